package mutators

import (
	"strings"
	"testing"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/cluster"
	"github.com/hcistorage/storage-webhook/providers"
)

// TestImageDeniedWithoutAnyClass: IMG-M1 denies an image that names no class in a cluster
// with no default class (the fixtures' cluster has one, so this case lives here).
func TestImageDeniedWithoutAnyClass(t *testing.T) {
	objs, err := cluster.DecodeManifests([]byte("apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: plain}\nprovisioner: rbd.csi.ceph.com\n"))
	if err != nil {
		t.Fatal(err)
	}
	view, err := cluster.NewFiles(objs)
	if err != nil {
		t.Fatal(err)
	}
	env := &admit.Env{View: view, Providers: providers.NewStore(nil)}
	req := &admit.Request{Operation: admit.Create, Namespace: "default", Name: "img",
		Object: []byte(`{"apiVersion":"harvesterhci.io/v1beta1","kind":"VirtualMachineImage","metadata":{"name":"img"},"spec":{"displayName":"x"}}`)}
	res := Image(env, req)
	if res.Allowed() || len(res.Patch) != 0 || res.Denials[0].Rule != RuleImageStorageClass ||
		!strings.Contains(res.Message(), "no default StorageClass") || !strings.Contains(res.Message(), "default/img") {
		t.Fatalf("result = %+v", res)
	}
}
