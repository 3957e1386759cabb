//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// configMapVolume is a folder laid out as the kubelet mounts a ConfigMap: the key's file is
// a link to ..data/<key>, ..data a link to a timestamped folder, and an update writes a new
// folder and renames a new link over ..data (the kubelet's AtomicWriter), so a reader sees
// the old file or the new one, never a mix.
type configMapVolume struct {
	dir, key string
	mu       sync.Mutex
	n        int
}

func newConfigMapVolume(dir, key, content string) (*configMapVolume, error) {
	v := &configMapVolume{dir: dir, key: key}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := v.write(content); err != nil {
		return nil, err
	}
	return v, os.Symlink(filepath.Join("..data", key), filepath.Join(dir, key))
}

// path is the file a reader opens.
func (v *configMapVolume) path() string { return filepath.Join(v.dir, v.key) }

// write swaps in content as the kubelet does.
func (v *configMapVolume) write(content string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.n++
	version := fmt.Sprintf("..2026_12_07_00_00_00.%d", v.n)
	if err := os.Mkdir(filepath.Join(v.dir, version), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(v.dir, version, v.key), []byte(content), 0o644); err != nil {
		return err
	}
	old, _ := os.Readlink(filepath.Join(v.dir, "..data"))
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(version, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		return err
	}
	if old != "" {
		return os.RemoveAll(filepath.Join(v.dir, old))
	}
	return nil
}

// baseProviders is the providers file of deploy/base's ConfigMap.
func baseProviders() string {
	data, err := os.ReadFile("../deploy/base/providers-configmap.yaml")
	if err != nil {
		panic(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal(data, &cm); err != nil {
		panic(err)
	}
	return cm.Data["providers.yaml"]
}
