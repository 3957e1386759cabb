// Command postrender is a Helm post-renderer for TestChartInstall: it points the chart's
// webhook configurations at the webhook process the e2e suite runs on 127.0.0.1 (envtest
// runs no pods), under names of their own, and drops the cluster-scoped RBAC objects the
// suite's other tests may already have made. Everything else passes through unchanged.
//
//	POSTRENDER_URL=https://127.0.0.1:PORT POSTRENDER_CA=<base64 PEM> POSTRENDER_PREFIX=helm-e2e postrender < in > out
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

func main() {
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	url, ca, prefix := os.Getenv("POSTRENDER_URL"), os.Getenv("POSTRENDER_CA"), os.Getenv("POSTRENDER_PREFIX")
	var out bytes.Buffer
	for _, doc := range strings.Split(string(in), "\n---") {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			fail(err)
		}
		if obj == nil {
			continue
		}
		kind, _ := obj["kind"].(string)
		switch kind {
		case "ClusterRole", "ClusterRoleBinding":
			continue
		case "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration":
			meta := obj["metadata"].(map[string]any)
			meta["name"] = prefix + "-" + meta["name"].(string)
			for _, w := range obj["webhooks"].([]any) {
				hook := w.(map[string]any)
				hook["name"] = prefix + "." + hook["name"].(string)
				cc := hook["clientConfig"].(map[string]any)
				svc := cc["service"].(map[string]any)
				hook["clientConfig"] = map[string]any{"url": url + svc["path"].(string), "caBundle": ca}
			}
		}
		b, err := yaml.Marshal(obj)
		if err != nil {
			fail(err)
		}
		out.WriteString("---\n")
		out.Write(b)
	}
	os.Stdout.Write(out.Bytes())
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "postrender:", err)
	os.Exit(1)
}
