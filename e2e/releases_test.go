//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestHarvesterUpgradeIsFollowed: the running service follows Harvester's server-version
// Setting with no restart. On v1.6.1 (the suite's) a snapshot of a Longhorn v2 volume is
// denied; after the Setting says v1.8.2 it is admitted, and so is a VM backup of a VM on
// that volume; after v1.9.0 the backup is denied again. The suite's webhook runs with
// deploy/base's service account and RBAC, which lets it read these three Settings and no
// other. The test changes the cluster's release, so it does not run in parallel.
func TestHarvesterUpgradeIsFollowed(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	for _, m := range []string{
		"apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: upgrade-longhorn-v2}\nprovisioner: driver.longhorn.io\nparameters: {dataEngine: \"v2\", migratable: \"true\"}\n",
	} {
		ensure(t, obj(t, "", m))
	}
	if _, err := create(t, obj(t, ns, pvc("data", "upgrade-longhorn-v2", "1Gi", "")), false); err != nil {
		t.Fatal(err)
	}
	if _, err := create(t, obj(t, ns, "apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata: {name: app}\n"+
		"spec: {runStrategy: Halted, template: {spec: {domain: {devices: {disks: [{name: root, disk: {bus: virtio}}]}}, volumes: [{name: root, persistentVolumeClaim: {claimName: data}}]}}}\n"), false); err != nil {
		t.Fatal(err)
	}
	snapshot := obj(t, ns, "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshot\nmetadata: {name: snap}\nspec: {source: {persistentVolumeClaimName: data}, volumeSnapshotClassName: longhorn-snapshot}\n")
	backup := obj(t, ns, "apiVersion: harvesterhci.io/v1beta1\nkind: VirtualMachineBackup\nmetadata: {name: app-backup}\n"+
		"spec: {type: backup, source: {apiGroup: kubevirt.io, kind: VirtualMachine, name: app}}\n")
	createDry := func(u *unstructured.Unstructured) error { _, err := create(t, u, true); return err }
	release := func() string {
		var r string
		sum(scrape(t, suite.webhook.probes+"/metrics"), "storage_webhook_harvester_release_info", func(l map[string]string) bool {
			r = l["release"] + " " + l["version"] + " " + l["source"]
			return true
		})
		return r
	}
	setVersion := func(v string) {
		t.Helper()
		retry(t, func() error {
			s, err := suite.dyn.Resource(settingsGVR).Get(ctx, "server-version", metav1.GetOptions{})
			if err != nil {
				return err
			}
			s.Object["value"] = v
			_, err = suite.dyn.Resource(settingsGVR).Update(ctx, s, metav1.UpdateOptions{})
			return err
		})
	}
	t.Cleanup(func() {
		setVersion(suiteSettings["server-version"][0])
		pollUntil(t, "the suite's release back in force", func() error {
			if r := release(); r != "v1.6 v1.6.1 setting" {
				return fmt.Errorf("release in force: %q", r)
			}
			return nil
		})
	})

	if r := release(); r != "v1.6 v1.6.1 setting" {
		t.Fatalf("release in force at start: %q, want v1.6 from the Setting", r)
	}
	if err := createDry(snapshot); !deniedBy(err, "VS-V1") || !strings.Contains(err.Error(), "as on Harvester v1.6 (v1.6.1, from Setting server-version)") {
		t.Fatalf("v1.6.1: a Longhorn v2 snapshot: %v, want VS-V1's denial naming the release", err)
	}
	if err := createDry(backup); !deniedBy(err, "VMB-V1") {
		t.Fatalf("v1.6.1: a Longhorn v2 VM backup: %v, want VMB-V1's denial", err)
	}

	upgraded := time.Now()
	setVersion("v1.8.2")
	pollUntil(t, "the snapshot admitted on v1.8.2", func() error { return createDry(snapshot) })
	t.Logf("UPGRADE the service followed server-version v1.8.2 within %v", time.Since(upgraded).Round(time.Millisecond))
	expectCreated(t, snapshot, anyObject)
	if err := createDry(backup); err != nil {
		t.Errorf("v1.8.2: a Longhorn v2 VM backup: %v, want it admitted", err)
	}
	if r := release(); r != "v1.8 v1.8.2 setting" {
		t.Errorf("release in force: %q", r)
	}

	setVersion("v1.9.0")
	pollUntil(t, "the VM backup denied on v1.9.0", func() error {
		if err := createDry(backup); !deniedBy(err, "VMB-V1") || !strings.Contains(err.Error(), "as on Harvester v1.9 (v1.9.0, from Setting server-version) does not support VM backups") {
			return fmt.Errorf("v1.9.0: %v", err)
		}
		return nil
	})
	if err := createDry(obj(t, ns, "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshot\nmetadata: {name: snap-2}\nspec: {source: {persistentVolumeClaimName: data}, volumeSnapshotClassName: longhorn-snapshot}\n")); err != nil {
		t.Errorf("v1.9.0: a Longhorn v2 snapshot: %v, want it admitted", err)
	}
	pollUntil(t, "the webhook's log saying v1.9.0 came into force", func() error { // lines are written in batches
		if !strings.Contains(readFile(suite.webhook.proc.logFile), "Harvester release in force: Harvester v1.9 (v1.9.0, from Setting server-version)") {
			return fmt.Errorf("no such line")
		}
		return nil
	})

	// What the service's RBAC lets it read of Harvester's Settings: the three, nothing else.
	sa := "system:serviceaccount:storage-webhook:storage-webhook"
	for _, c := range []struct {
		verb, name string
		allowed    bool
	}{
		{"get", "server-version", true}, {"watch", "csi-driver-config", true}, {"list", "backup-target", true},
		{"get", "ssl-certificates", false}, {"list", "", false}, {"watch", "", false},
	} {
		review, err := suite.kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: sa, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:storage-webhook"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Group: "harvesterhci.io", Resource: "settings", Verb: c.verb, Name: c.name},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if review.Status.Allowed != c.allowed {
			t.Errorf("the service account may %s settings %q: %v, want %v", c.verb, c.name, review.Status.Allowed, c.allowed)
		}
	}
}
