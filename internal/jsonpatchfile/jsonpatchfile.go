// Package jsonpatchfile applies a kustomize component's RFC 6902 patch file to a YAML
// manifest, as kustomize applies it, for tests that check what a component renders
// without running kustomize (`make e2e` renders the components with kustomize itself).
package jsonpatchfile

import (
	"fmt"
	"os"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"sigs.k8s.io/yaml"
)

// Apply reads the YAML manifest at doc and the YAML patch at patch, and returns the patched
// manifest as JSON.
func Apply(doc, patch string) ([]byte, error) {
	js, err := yamlFileToJSON(doc)
	if err != nil {
		return nil, err
	}
	ops, err := yamlFileToJSON(patch)
	if err != nil {
		return nil, err
	}
	p, err := jsonpatch.DecodePatch(ops)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", patch, err)
	}
	out, err := p.Apply(js)
	if err != nil {
		return nil, fmt.Errorf("%s does not apply to %s: %w", patch, doc, err)
	}
	return out, nil
}

func yamlFileToJSON(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return js, nil
}
