//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// The cluster-life replay: what KubeVirt, CDI, Harvester, Kubernetes' own controllers and
// users write all day, in the shapes their source writes (testdata/traffic holds the same
// shapes as single reviews) and as their service accounts. None of it is a request a rule
// can act on, so none of it may wait on this service (SPEC §5.9).

const lifeRounds = 63 // 16 requests each: 1,008 requests

// lifeWorld is what a namespace holds before the day starts: a cdi image on an RBD class
// with its DataVolume and golden PVC, a running VM with a disk made from the image, and a
// StorageProfile.
type lifeWorld struct {
	ns, profile string
	imageUID    types.UID
}

const lifeClass = `
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: life-rbd}
provisioner: rbd.csi.ceph.com
parameters: {pool: fast}
`

func newLifeWorld(t *testing.T) *lifeWorld {
	t.Helper()
	ensure(t, obj(t, "", lifeClass))
	w := &lifeWorld{ns: newNamespace(t)}
	w.profile = "life-" + w.ns
	img := expectCreated(t, obj(t, w.ns, image("img", "life-rbd", "cdi")), anyObject)
	w.imageUID = img.GetUID()
	_ = unstructured.SetNestedField(img.Object, map[string]any{"size": int64(1 << 30), "virtualSize": int64(10 << 30), "progress": int64(0)}, "status")
	retry(t, func() error {
		_, err := client(t, "VirtualMachineImage", w.ns, harvesterUser).Update(context.Background(), img, metav1.UpdateOptions{})
		return err
	})
	w.create(t, harvesterUser, `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: img
  ownerReferences: [{apiVersion: harvesterhci.io/v1beta1, kind: VirtualMachineImage, name: img, uid: `+string(w.imageUID)+`, blockOwnerDeletion: true}]
spec:
  source: {http: {url: "http://mirror.example/img.qcow2"}}
  storage: {storageClassName: life-rbd, resources: {requests: {storage: "10737418240"}}}
`)
	w.create(t, cdiUser, cdiPVC("img", "life-rbd", "10Gi"))
	w.create(t, harvesterUser, pvc("vm-disk", "life-rbd", "20Gi", "harvesterhci.io/imageId: "+w.ns+"/img"))
	w.create(t, someUser, `apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: vm
  annotations:
    harvesterhci.io/volumeClaimTemplates: '[{"metadata":{"name":"vm-disk","annotations":{"harvesterhci.io/imageId":"`+w.ns+`/img"}},"spec":{"accessModes":["ReadWriteMany"],"volumeMode":"Block","storageClassName":"life-rbd","resources":{"requests":{"storage":"20Gi"}}}}]'
spec:
  runStrategy: Always
  template:
    spec:
      domain: {cpu: {cores: 2}, memory: {guest: 2Gi}, devices: {disks: [{name: disk-0, disk: {bus: virtio}}]}}
      volumes: [{name: disk-0, persistentVolumeClaim: {claimName: vm-disk}}]
`)
	w.create(t, cdiUser, "apiVersion: cdi.kubevirt.io/v1beta1\nkind: StorageProfile\nmetadata: {name: "+w.profile+"}\nspec: {}\n")
	return w
}

// create makes an object of the world as user, waiting out the webhook's caches.
func (w *lifeWorld) create(t *testing.T, user, manifest string) {
	t.Helper()
	expectCreatedAs(t, user, obj(t, w.ns, manifest), anyObject)
}

// lifeOp is one request of the day.
type lifeOp struct {
	what string
	do   func(ctx context.Context) error
}

// day is the requests of round i against the world, in order.
func (w *lifeWorld) day(t *testing.T, i int) []lifeOp {
	c := func(user, kind string) dynamic.ResourceInterface { return client(t, kind, w.ns, user) }
	vmStatus := func(user string, set func(status map[string]any)) func(context.Context) error {
		return func(ctx context.Context) error {
			vm, err := c(user, "VirtualMachine").Get(ctx, "vm", metav1.GetOptions{})
			if err != nil {
				return err
			}
			status, _, _ := unstructured.NestedMap(vm.Object, "status")
			if status == nil {
				status = map[string]any{}
			}
			set(status)
			_ = unstructured.SetNestedMap(vm.Object, status, "status")
			_, err = c(user, "VirtualMachine").UpdateStatus(ctx, vm, metav1.UpdateOptions{})
			return err
		}
	}
	runStrategy := func(from, to string) func(context.Context) error {
		return func(ctx context.Context) error {
			patch := fmt.Appendf(nil, `[{"op":"test","path":"/spec/runStrategy","value":%q},{"op":"replace","path":"/spec/runStrategy","value":%q}]`, from, to)
			_, err := c(virtAPI, "VirtualMachine").Patch(ctx, "vm", types.JSONPatchType, patch, metav1.PatchOptions{})
			return err
		}
	}
	update := func(user, kind, name string, change func(u *unstructured.Unstructured)) func(context.Context) error {
		return func(ctx context.Context) error {
			u, err := c(user, kind).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			change(u)
			_, err = c(user, kind).Update(ctx, u, metav1.UpdateOptions{})
			return err
		}
	}
	updateStatus := func(user, kind, name string, status map[string]any) func(context.Context) error {
		return func(ctx context.Context) error {
			u, err := c(user, kind).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			_ = unstructured.SetNestedMap(u.Object, status, "status")
			_, err = c(user, kind).UpdateStatus(ctx, u, metav1.UpdateOptions{})
			return err
		}
	}
	createAs := func(user, manifest string) func(context.Context) error {
		return func(ctx context.Context) error {
			u := obj(t, w.ns, manifest)
			_, err := c(user, u.GetKind()).Create(ctx, u, metav1.CreateOptions{})
			return err
		}
	}
	deleteAs := func(user, kind, name string) func(context.Context) error {
		return func(ctx context.Context) error { return c(user, kind).Delete(ctx, name, metav1.DeleteOptions{}) }
	}
	plain, dv := fmt.Sprintf("p-%d", i), fmt.Sprintf("d-%d", i)
	printable := []string{"Running", "Stopped"}[i%2]
	return []lifeOp{
		{"virt-controller updates the VM status", vmStatus(virtController, func(s map[string]any) {
			s["printableStatus"], s["ready"], s["created"] = printable, i%2 == 0, true
			delete(s, "stateChangeRequests")
		})},
		{"virt-api stops the VM (runStrategy)", runStrategy("Always", "Halted")},
		{"virt-api starts the VM (runStrategy)", runStrategy("Halted", "Always")},
		{"virt-api asks for a restart (status.stateChangeRequests)", vmStatus(virtAPI, func(s map[string]any) {
			s["stateChangeRequests"] = []any{map[string]any{"action": "Stop"}, map[string]any{"action": "Start"}}
		})},
		{"virt-controller reports a migration", vmStatus(virtController, func(s map[string]any) { s["printableStatus"] = "Migrating" })},
		{"a user creates a PVC", createAs(someUser, pvc(plain, "life-rbd", "1Gi", ""))},
		{"the PV controller binds it", update(pvBinder, "PersistentVolumeClaim", plain, func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, "pv-"+w.ns+"-"+plain, "spec", "volumeName")
			u.SetAnnotations(map[string]string{"pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes"})
		})},
		{"the PV controller sets its status", updateStatus(pvBinder, "PersistentVolumeClaim", plain, map[string]any{"phase": "Bound", "capacity": map[string]any{"storage": "1Gi"}})},
		{"CDI records import progress on the golden PVC", update(cdiUser, "PersistentVolumeClaim", "img", func(u *unstructured.Unstructured) {
			a := u.GetAnnotations()
			a["cdi.kubevirt.io/storage.populator.progress"] = fmt.Sprintf("%d.0%%", i)
			u.SetAnnotations(a)
		})},
		{"a user imports a disk from HTTP", createAs(someUser, "apiVersion: cdi.kubevirt.io/v1beta1\nkind: DataVolume\nmetadata: {name: "+dv+"}\n"+
			"spec: {source: {http: {url: \"http://mirror.example/d.qcow2\"}}, storage: {storageClassName: life-rbd, resources: {requests: {storage: 1Gi}}}}\n")},
		{"CDI updates the DataVolume status", updateStatus(cdiUser, "DataVolume", dv, map[string]any{"phase": "ImportInProgress", "progress": fmt.Sprintf("%d.0%%", i)})},
		{"CDI annotates the DataVolume", update(cdiUser, "DataVolume", dv, func(u *unstructured.Unstructured) {
			u.SetAnnotations(map[string]string{"cdi.kubevirt.io/storage.usePopulator": "true"})
		})},
		{"CDI updates the StorageProfile status", updateStatus(cdiUser, "StorageProfile", w.profile, map[string]any{
			"provisioner": "rbd.csi.ceph.com", "storageClass": "life-rbd", "cloneStrategy": "csi-clone",
			"claimPropertySets": []any{map[string]any{"accessModes": []any{"ReadWriteMany"}, "volumeMode": "Block"}}, "dataImportCronSourceFormat": []string{"pvc", "snapshot"}[i%2]})},
		{"Harvester records image progress (a full update)", update(harvesterUser, "VirtualMachineImage", "img", func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, int64(i), "status", "progress")
		})},
		{"a user deletes the PVC", deleteAs(someUser, "PersistentVolumeClaim", plain)},
		{"a user deletes the DataVolume", deleteAs(someUser, "DataVolume", dv)},
	}
}

// end deletes the namespace as Kubernetes does (no controller-manager runs here): the
// namespace controller deletes every object in it, then the namespace goes.
func (w *lifeWorld) end(t *testing.T) []lifeOp {
	del := func(kind, name string) lifeOp {
		return lifeOp{"the namespace controller deletes " + kind + " " + name, func(ctx context.Context) error {
			return client(t, kind, w.ns, nsController).Delete(ctx, name, metav1.DeleteOptions{})
		}}
	}
	return []lifeOp{
		{"a user deletes the namespace", func(ctx context.Context) error {
			return suite.kube.CoreV1().Namespaces().Delete(ctx, w.ns, metav1.DeleteOptions{})
		}},
		del("VirtualMachine", "vm"), del("DataVolume", "img"), del("VirtualMachineImage", "img"),
		del("PersistentVolumeClaim", "img"), del("PersistentVolumeClaim", "vm-disk"),
	}
}

// replay runs ops in order and returns the errors, each named.
func replay(ops []lifeOp) []string {
	var failed []string
	for _, op := range ops {
		if err := op.do(context.Background()); err != nil {
			failed = append(failed, op.what+": "+err.Error())
		}
	}
	return failed
}

// days is every round of the day.
func (w *lifeWorld) days(t *testing.T) []lifeOp {
	var ops []lifeOp
	for i := range lifeRounds {
		ops = append(ops, w.day(t, i)...)
	}
	return ops
}

// ours keeps the samples of our webhooks (the API server labels them by webhook name).
func ours(labels map[string]string) bool {
	return strings.HasSuffix(labels["name"], ".storage-webhook.hcistorage.io")
}

// TestClusterLife: (a) with the service up, the day's requests reach it not once (its own
// request counter and the API server's webhook call counter), and the API server reports
// how many its matchConditions kept away; (b) with the service stopped, every one of them
// succeeds, while each protected operation is refused and the Ignore webhooks admit
// unmutated.
func TestClusterLife(t *testing.T) {
	metricsURL := func() string { return suite.webhook.probes + "/metrics" }
	t.Run("with the service up, no ordinary request reaches it", func(t *testing.T) {
		w := newLifeWorld(t)
		ops := append(w.days(t), w.end(t)...)
		ownBefore := sum(scrape(t, metricsURL()), "storage_webhook_requests_total", nil)
		api := scrape(t, "")
		callsBefore, skippedBefore := sum(api, "apiserver_admission_webhook_request_total", ours), sum(api, "apiserver_admission_match_condition_exclusions_total", ours)
		start := time.Now()
		if failed := replay(ops); len(failed) > 0 {
			t.Fatalf("%d of %d requests failed:\n%s", len(failed), len(ops), strings.Join(failed, "\n"))
		}
		took := time.Since(start)
		mine := scrape(t, metricsURL())
		own := sum(mine, "storage_webhook_requests_total", nil) - ownBefore
		api = scrape(t, "")
		if mine["storage_webhook_requests_total"] == nil || api["apiserver_admission_webhook_request_total"] == nil {
			t.Fatal("a call counter is missing: the setup's calls should have made both")
		}
		calls := sum(api, "apiserver_admission_webhook_request_total", ours) - callsBefore
		skipped := sum(api, "apiserver_admission_match_condition_exclusions_total", ours) - skippedBefore
		t.Logf("LIFE %d requests in %v: the service received %v (its metrics), the API server called it %v times and skipped it %v times by matchConditions",
			len(ops), took.Round(time.Millisecond), own, calls, skipped)
		if own != 0 || calls != 0 {
			t.Errorf("ordinary requests reached the service: %v (its metrics), %v (API server)", own, calls)
		}
		if skipped == 0 {
			t.Error("the API server reports no request kept away by matchConditions: the replay matched no webhook's rules")
		}
	})

	// What a call that does reach the service costs through the API server (TLS, the
	// review, the answer): the figure timeoutSeconds is set against.
	t.Run("a call that reaches the service takes milliseconds through the API server", func(t *testing.T) {
		w := newLifeWorld(t)
		const n = 300
		before := scrape(t, "")
		for i := range n {
			disk := obj(t, w.ns, pvc(fmt.Sprintf("lat-%d", i), "life-rbd", "20Gi", "harvesterhci.io/imageId: "+w.ns+"/img"))
			if _, err := create(t, disk, true); err != nil {
				t.Fatal(err)
			}
			if _, err := create(t, obj(t, w.ns, image(fmt.Sprintf("lat-%d", i), "life-rbd", "")), true); err != nil {
				t.Fatal(err)
			}
		}
		after := scrape(t, "")
		for _, name := range []string{"persistentvolumeclaims.validate", "virtualmachineimages.mutate", "virtualmachineimages.validate"} {
			name += ".storage-webhook.hcistorage.io"
			count, buckets := webhookLatency(after, name)
			count0, buckets0 := webhookLatency(before, name)
			if count-count0 < n {
				t.Errorf("%s: %v calls, want %d", name, count-count0, n)
				continue
			}
			var line []string
			for _, le := range []float64{0.005, 0.025, 0.1} {
				line = append(line, fmt.Sprintf("%.1f%% within %gms", 100*(buckets[le]-buckets0[le])/(count-count0), le*1000))
			}
			t.Logf("LATENCY %s: %v calls, %s", name, count-count0, strings.Join(line, ", "))
			if frac := (buckets[0.1] - buckets0[0.1]) / (count - count0); frac < 1 {
				t.Errorf("%s: %.1f%% of calls took longer than 100 ms", name, 100*(1-frac))
			}
		}
	})

	t.Run("with the service stopped, the day goes on and protected writes are refused", func(t *testing.T) {
		w := newLifeWorld(t)
		days, end, protected := w.days(t), w.end(t), w.protected(t)
		suite.webhook.stop()
		defer func() {
			if err := suite.webhook.start(); err != nil {
				t.Fatalf("restart webhook: %v", err)
			}
		}()
		if failed := replay(days); len(failed) > 0 {
			t.Errorf("%d of %d ordinary requests failed while the service was down:\n%s", len(failed), len(days), strings.Join(failed, "\n"))
		}
		refused := 0
		for _, p := range protected {
			err := p.do(context.Background())
			switch {
			case p.ignore && err != nil:
				t.Errorf("%s: want an unmutated allow (failurePolicy Ignore), got %v", p.what, err)
			case !p.ignore && (err == nil || !strings.Contains(err.Error(), "failed calling webhook")):
				t.Errorf("%s: want the API server to refuse while the service is down, got %v", p.what, err)
			case !p.ignore:
				refused++
			}
		}
		// The namespace goes last: nothing can be created in a namespace being deleted.
		if failed := replay(end); len(failed) > 0 {
			t.Errorf("deleting the namespace failed while the service was down:\n%s", strings.Join(failed, "\n"))
		}
		t.Logf("LIFE service down: %d ordinary requests admitted; %d of %d protected writes refused, %d Ignore webhooks admitted unmutated",
			len(days)+len(end), refused, len(protected)-ignored(protected), ignored(protected))
	})
}

// protectedOp is a write a rule guards: refused while the service is down (failurePolicy
// Fail), or, for the Ignore webhooks, admitted without the mutation.
type protectedOp struct {
	lifeOp
	ignore bool
}

func ignored(ops []protectedOp) (n int) {
	for _, p := range ops {
		if p.ignore {
			n++
		}
	}
	return n
}

// protected is one write per guarded rule, against the world (dry runs: the answer is the
// same and nothing is stored).
func (w *lifeWorld) protected(t *testing.T) []protectedOp {
	dry := []string{metav1.DryRunAll}
	ctx := context.Background()
	createOp := func(what, user, manifest string, check func(*unstructured.Unstructured) error) lifeOp {
		return lifeOp{what, func(context.Context) error {
			u := obj(t, w.ns, manifest)
			got, err := client(t, u.GetKind(), w.ns, user).Create(ctx, u, metav1.CreateOptions{DryRun: dry})
			if err == nil && check != nil {
				err = check(got)
			}
			return err
		}}
	}
	updateOp := func(what, kind, name string, change func(*unstructured.Unstructured)) lifeOp {
		return lifeOp{what, func(context.Context) error {
			u, err := client(t, kind, w.ns, "").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			change(u)
			_, err = client(t, kind, w.ns, "").Update(ctx, u, metav1.UpdateOptions{DryRun: dry})
			return err
		}}
	}
	deleteOp := func(what, kind, ns, name string) lifeOp {
		return lifeOp{what, func(context.Context) error {
			return client(t, kind, ns, someUser).Delete(ctx, name, metav1.DeleteOptions{DryRun: dry})
		}}
	}
	unmarked := func(u *unstructured.Unstructured) error {
		if len(u.GetAnnotations()) != 0 || str(u, "spec", "cloneStrategy") != "" {
			return fmt.Errorf("mutated: %v", u.Object)
		}
		return nil
	}
	ref := "harvesterhci.io/imageId: " + w.ns + "/img"
	return []protectedOp{
		{lifeOp: createOp("IMG-M1/M2: an image is created", someUser, image("new-img", "life-rbd", ""), nil)},
		{lifeOp: updateOp("IMG-V4: an image's url changes", "VirtualMachineImage", "img", func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, "http://elsewhere/x.qcow2", "spec", "url")
		})},
		{lifeOp: createOp("PVC-V3: a disk from the image is created", someUser, pvc("new-disk", "life-rbd", "20Gi", ref), nil)},
		{lifeOp: updateOp("PVC-V1: the golden mark is changed", "PersistentVolumeClaim", "img", func(u *unstructured.Unstructured) {
			u.SetAnnotations(map[string]string{"harvesterhci.io/goldenImage": "false"})
		})},
		{lifeOp: deleteOp("PVC-V2: the golden PVC is deleted", "PersistentVolumeClaim", w.ns, "img")},
		{lifeOp: updateOp("VM-V1: a VM's disk from the image grows", "VirtualMachine", "vm", func(u *unstructured.Unstructured) {
			a := u.GetAnnotations()
			a["harvesterhci.io/volumeClaimTemplates"] = strings.Replace(a["harvesterhci.io/volumeClaimTemplates"], "20Gi", "30Gi", 1)
			u.SetAnnotations(a)
		})},
		{lifeOp: updateOp("VM-V2: a VM gets a PVC volume (a hotplug)", "VirtualMachine", "vm", func(u *unstructured.Unstructured) {
			vols, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "volumes")
			vols = append(vols, map[string]any{"name": "hot", "persistentVolumeClaim": map[string]any{"claimName": "img", "hotpluggable": true}})
			_ = unstructured.SetNestedSlice(u.Object, vols, "spec", "template", "spec", "volumes")
		})},
		{lifeOp: createOp("DV-M1/DV-V1: a disk is cloned from the golden PVC", harvesterUser, "apiVersion: cdi.kubevirt.io/v1beta1\nkind: DataVolume\nmetadata: {name: clone}\n"+
			"spec: {source: {pvc: {namespace: "+w.ns+", name: img}}, storage: {storageClassName: life-rbd, resources: {requests: {storage: 20Gi}}}}\n", nil)},
		{lifeOp: deleteOp("DV-V2: the image's DataVolume is deleted", "DataVolume", w.ns, "img")},
		{lifeOp: createOp("SC-M1/SC-V1: a StorageClass is created", someUser, "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: life-new}\nprovisioner: nfs.csi.k8s.io\n", nil)},
		{lifeOp: deleteOp("SC-V2: a StorageClass is deleted", "StorageClass", "", "life-rbd")},
		{lifeOp: createOp("VS-V1: a volume is snapshotted", harvesterUser, "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshot\nmetadata: {name: snap}\nspec: {source: {persistentVolumeClaimName: vm-disk}}\n", nil)},
		{lifeOp: createOp("VMB-V1: a VM is backed up", harvesterUser, "apiVersion: harvesterhci.io/v1beta1\nkind: VirtualMachineBackup\nmetadata: {name: b}\nspec: {source: {apiGroup: kubevirt.io, kind: VirtualMachine, name: vm}}\n", nil)},
		{lifeOp: createOp("PVC-M1 (Ignore): CDI creates a DataVolume's PVC, unmarked", cdiUser, cdiPVC("new-cdi", "life-rbd", "1Gi"), unmarked), ignore: true},
		{lifeOp: createOp("SP-M1 (Ignore): CDI creates a StorageProfile, unfilled", cdiUser, "apiVersion: cdi.kubevirt.io/v1beta1\nkind: StorageProfile\nmetadata: {name: life-new-"+w.ns+"}\nspec: {}\n", unmarked), ignore: true},
	}
}

// webhookLatency is the API server's histogram of its calls to one webhook: the count, and
// the cumulative count at each bucket's upper bound.
func webhookLatency(families map[string]*dto.MetricFamily, name string) (float64, map[float64]float64) {
	buckets := map[float64]float64{}
	var count float64
	if f := families["apiserver_admission_webhook_admission_duration_seconds"]; f != nil {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == "name" && l.GetValue() == name {
					count += float64(m.GetHistogram().GetSampleCount())
					for _, b := range m.GetHistogram().GetBucket() {
						buckets[b.GetUpperBound()] += float64(b.GetCumulativeCount())
					}
				}
			}
		}
	}
	return count, buckets
}
