package cmd

import (
	"fmt"
	"io"
	"path"
	"path/filepath"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/hcistorage/storage-webhook/certs"
)

// Certs makes a CA and a serving certificate for the webhook's Service and prints the TLS
// Secret (YAML) and the caBundle, or writes the PEM files with --out. With --client-auth it
// makes the API server's client credentials instead (and the serving ones too only with
// --out): a client CA for `serve --client-ca-file`, a client certificate, and the kubeconfig
// and AdmissionConfiguration that give that certificate to the API server.
func Certs(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("certs", "certs [--service NAME] [--namespace NS] [--secret NAME] [--validity DURATION] [--out DIR] [--client-auth DIR [--client-auth-path PATH] [--webhook-host HOST:PORT]]", stderr)
	var o certs.Options
	var secret, out, clientAuth, clientAuthPath, webhookHost string
	fs.StringVar(&o.Service, "service", "storage-webhook", "name of the webhook's Service")
	fs.StringVar(&o.Namespace, "namespace", "storage-webhook", "namespace of the Service and Secret")
	fs.StringVar(&secret, "secret", "storage-webhook-tls", "name of the Secret to print")
	fs.DurationVar(&o.Validity, "validity", 365*24*time.Hour, "validity of the CAs and certificates")
	fs.StringVar(&out, "out", "", "write tls.crt, tls.key and ca.crt into this folder instead of printing the Secret")
	fs.StringVar(&clientAuth, "client-auth", "", "write the API server's client credentials into this folder: "+
		certs.ClientCAFile+" (for serve --client-ca-file), "+certs.ClientCertFile+", "+certs.ClientKeyFile+", "+
		certs.KubeconfigFile+" and "+certs.AdmissionConfigFile+" (for kube-apiserver --admission-control-config-file)")
	fs.StringVar(&clientAuthPath, "client-auth-path", "/etc/kubernetes/storage-webhook", "absolute folder that will hold the --client-auth files on every control-plane node, as kube-apiserver sees it (the paths written into the kubeconfig and admission configuration)")
	fs.StringVar(&webhookHost, "webhook-host", "", "host:port the API server dials the webhook at, the kubeconfig user's name (default <service>.<namespace>.svc:443)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if clientAuth != "" {
		if webhookHost == "" {
			webhookHost = o.Service + "." + o.Namespace + ".svc:443"
		}
		c, err := certs.GenerateClientAuth(certs.ClientAuthOptions{WebhookHost: webhookHost, Dir: clientAuthPath, Validity: o.Validity})
		if err != nil {
			return usageError{err}
		}
		if err := certs.WriteClientAuthFiles(c, clientAuth); err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "# wrote %s: copy every file but %s to %s on every control-plane node and start kube-apiserver with\n"+
			"--admission-control-config-file=%s\n# then give the webhook %s (deploy/components/client-auth, or the chart's clientAuth values)\n",
			clientAuth, certs.ClientCAFile, clientAuthPath, path.Join(clientAuthPath, certs.AdmissionConfigFile), filepath.Join(clientAuth, certs.ClientCAFile))
		if err != nil || out == "" {
			return err
		}
	}
	b, err := certs.Generate(o)
	if err != nil {
		return usageError{err}
	}
	if out != "" {
		if err := certs.WriteFiles(b, out); err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, b.CABundle())
		return err
	}
	y, err := yaml.Marshal(b.Secret(secret, o.Namespace))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s---\n# caBundle for the webhook configurations:\n# %s\n", y, b.CABundle())
	return err
}
