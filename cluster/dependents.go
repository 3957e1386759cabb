package cluster

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/hcistorage/storage-webhook/harvester"
)

// Key names one stored object: its resource (as in the route table), namespace and name.
type Key struct{ Resource, Namespace, Name string }

// Index names used only to find what depends on a changed object (Dependents).
const (
	indexImage         = "image"         // PVCs and VMs by the images ("namespace/name") they reference
	indexSnapshotClass = "snapshotclass" // classes and snapshots by the VolumeSnapshotClass they name
)

// dependentIndexers are added to newIndexers' by resource.
var dependentIndexers = map[string]cache.Indexers{
	"persistentvolumeclaims": {indexImage: indexPVCImage, indexClass: indexPVCClass},
	"virtualmachines":        {indexImage: indexVMImages, indexPVC: indexVMClaims},
	"volumesnapshots":        {indexPVC: indexSnapshotPVC, indexSnapshotClass: indexSnapshotClassName},
	"storageclasses":         {indexSnapshotClass: indexClassSnapshotClass},
}

func indexPVCImage(obj any) ([]string, error) {
	if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok && pvc.Annotations[harvester.AnnImageID] != "" {
		return []string{pvc.Annotations[harvester.AnnImageID]}, nil
	}
	return nil, nil
}

func indexPVCClass(obj any) ([]string, error) {
	if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok && pvc.Spec.StorageClassName != nil {
		return []string{*pvc.Spec.StorageClassName}, nil
	}
	return nil, nil
}

// templateImages is what indexVMImages reads of each volumeClaimTemplates entry: its image
// annotation, and nothing else. Decoding whole PersistentVolumeClaims would also parse
// every quantity of a stored VM's annotation, which no rule bounds here (admit.Decode does
// for the rules).
type templateImages []struct {
	Metadata struct {
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
}

// indexVMImages: the images of the VM's volumeClaimTemplates entries and the golden PVCs
// (named like their image) its dataVolumeTemplates clone.
func indexVMImages(obj any) ([]string, error) {
	vm, ok := obj.(*kubevirtv1.VirtualMachine)
	if !ok {
		return nil, nil
	}
	var keys []string
	var templates templateImages
	if raw := vm.Annotations[harvester.AnnVolumeClaimTemplates]; raw != "" && json.Unmarshal([]byte(raw), &templates) == nil {
		for _, t := range templates {
			if ref := t.Metadata.Annotations[harvester.AnnImageID]; ref != "" {
				keys = append(keys, ref)
			}
		}
	}
	for _, dvt := range vm.Spec.DataVolumeTemplates {
		if src := dvt.Spec.Source; src != nil && src.PVC != nil {
			ns := src.PVC.Namespace
			if ns == "" {
				ns = vm.Namespace
			}
			keys = append(keys, ns+"/"+src.PVC.Name)
		}
	}
	return dedupe(keys), nil
}

// indexVMClaims: the claims of the VM's volumes and hotplug requests.
func indexVMClaims(obj any) ([]string, error) {
	vm, ok := obj.(*kubevirtv1.VirtualMachine)
	if !ok {
		return nil, nil
	}
	var keys []string
	if vm.Spec.Template != nil {
		for _, v := range vm.Spec.Template.Spec.Volumes {
			if v.PersistentVolumeClaim != nil {
				keys = append(keys, vm.Namespace+"/"+v.PersistentVolumeClaim.ClaimName)
			}
		}
	}
	for _, r := range vm.Status.VolumeRequests {
		if o := r.AddVolumeOptions; o != nil && o.VolumeSource != nil && o.VolumeSource.PersistentVolumeClaim != nil {
			keys = append(keys, vm.Namespace+"/"+o.VolumeSource.PersistentVolumeClaim.ClaimName)
		}
	}
	return dedupe(keys), nil
}

func indexSnapshotPVC(obj any) ([]string, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		if claim, _, _ := unstructured.NestedString(u.Object, "spec", "source", "persistentVolumeClaimName"); claim != "" {
			return []string{u.GetNamespace() + "/" + claim}, nil
		}
	}
	return nil, nil
}

// indexSnapshotClassName: the class a snapshot names, "" for none (the driver's default).
func indexSnapshotClassName(obj any) ([]string, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		name, _, _ := unstructured.NestedString(u.Object, "spec", "volumeSnapshotClassName")
		return []string{name}, nil
	}
	return nil, nil
}

func indexClassSnapshotClass(obj any) ([]string, error) {
	if sc, ok := obj.(*storagev1.StorageClass); ok && sc.Annotations[harvester.AnnClassSnapshotClass] != "" {
		return []string{sc.Annotations[harvester.AnnClassSnapshotClass]}, nil
	}
	return nil, nil
}

func dedupe(keys []string) []string {
	slices.Sort(keys)
	return slices.Compact(keys)
}

// List returns every object of a resource in the view (nil for a resource it does not hold).
func (c *Cache) List(resource string) []any {
	if ix, ok := c.byResource[resource]; ok {
		return ix.List()
	}
	return nil
}

// Get returns one object of the view.
func (c *Cache) Get(k Key) (any, bool) {
	ix, ok := c.byResource[k.Resource]
	if !ok {
		return nil, false
	}
	obj, ok, err := ix.GetByKey(NamespacedName(k.Namespace, k.Name))
	return obj, ok && err == nil
}

// KeyOf names an object of resource.
func KeyOf(resource string, obj any) (Key, bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return Key{}, false
	}
	return Key{resource, m.GetNamespace(), m.GetName()}, true
}

// Dependents are the objects whose audit reads obj (of resource), itself included when
// its own kind is audited: a changed class re-checks itself, its StorageProfile, the images
// on it and the snapshots of its PVCs; a changed VolumeSnapshotClass the classes and
// snapshots that name it and the snapshots that name none; a changed image the PVCs and VMs
// that reference it and its golden PVC and the VMs using that; a changed PVC itself, its
// snapshots and the VMs using it. Each lookup is an index read, so the work follows the
// number of dependents, not the size of the cluster; only a change of Harvester's Settings
// (its release) queues every object.
func (c *Cache) Dependents(resource string, obj any) []Key {
	self, ok := KeyOf(resource, obj)
	if !ok {
		return nil
	}
	ns := NamespacedName(self.Namespace, self.Name)
	var out []Key
	add := func(res, index, value string) {
		ix, ok := c.byResource[res]
		if !ok {
			return
		}
		objs, _ := ix.ByIndex(index, value)
		for _, o := range objs {
			if k, ok := KeyOf(res, o); ok {
				out = append(out, k)
			}
		}
	}
	switch resource {
	case "storageclasses":
		out = append(out, self, Key{"storageprofiles", "", self.Name})
		add("virtualmachineimages", indexClass, self.Name)
		pvcs, _ := c.pvcs.ByIndex(indexClass, self.Name)
		for _, p := range pvcs {
			if k, ok := KeyOf("persistentvolumeclaims", p); ok {
				add("volumesnapshots", indexPVC, NamespacedName(k.Namespace, k.Name))
			}
		}
	case "volumesnapshotclasses":
		add("storageclasses", indexSnapshotClass, self.Name)
		add("volumesnapshots", indexSnapshotClass, self.Name)
		add("volumesnapshots", indexSnapshotClass, "")
	case "virtualmachineimages":
		out = append(out, self, Key{"persistentvolumeclaims", self.Namespace, self.Name})
		add("persistentvolumeclaims", indexImage, ns)
		add("virtualmachines", indexImage, ns)
		add("virtualmachines", indexPVC, ns)
	case "persistentvolumeclaims":
		out = append(out, self)
		add("volumesnapshots", indexPVC, ns)
		add("virtualmachines", indexPVC, ns)
	case "virtualmachines":
		// a VM's shareable disks decide VS-V1 for the snapshots of its claims
		out = append(out, self)
		claims, _ := indexVMClaims(obj)
		for _, claim := range claims {
			add("volumesnapshots", indexPVC, claim)
		}
	case "volumesnapshots", "storageprofiles":
		out = append(out, self)
	default:
		if strings.HasPrefix(resource, "settings/") {
			// Harvester's release (or a Setting) changed: what the rules decide can change
			// for any object. Rare (an upgrade, an edit), so everything is audited again.
			for res, ix := range c.byResource {
				if strings.HasPrefix(res, "settings/") {
					continue
				}
				for _, o := range ix.List() {
					if k, ok := KeyOf(res, o); ok {
						out = append(out, k)
					}
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b Key) int {
		return cmp.Or(strings.Compare(a.Resource, b.Resource), strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	return slices.Compact(out)
}

// Subscribe calls handler for every add, update and delete the watch caches see (the
// initial list included). A file view has no events and returns false.
func (c *Cache) Subscribe(handler func(resource string, obj any)) bool {
	if len(c.informers) == 0 {
		return false
	}
	for res, inf := range c.informers {
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { handler(res, obj) },
			UpdateFunc: func(_, obj any) { handler(res, obj) },
			DeleteFunc: func(obj any) { handler(res, obj) },
		})
	}
	return true
}
