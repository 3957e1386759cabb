// Package cluster is the webhook's read-only view of the cluster: the objects the rules
// read, kept in client-go indexers. Two sources fill the same indexers with the same
// transforms and index functions: watch caches (informers.go) in production, and YAML/JSON
// files (files.go) for `serve --cluster`, `check` and tests. Reading it never calls the API
// server (IMG-V6's authorization question goes through admit.Access instead).
package cluster

import (
	"slices"
	"strings"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/client-go/tools/cache"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/hcistorage/storage-webhook/harvester"
)

// View is what the rules may know about the cluster. Every method is an O(1) map or index
// lookup (plus the size of its answer); none does I/O.
type View interface {
	StorageClass(name string) (*storagev1.StorageClass, bool)
	// DefaultStorageClass is the class marked default; with several, the newest (then the
	// first by name), as the API server's DefaultStorageClass admission plugin picks it.
	DefaultStorageClass() (*storagev1.StorageClass, bool)
	PVC(namespace, name string) (*corev1.PersistentVolumeClaim, bool)
	Image(namespace, name string) (*harvester.VirtualMachineImage, bool)
	// RunningPodsUsingPVC names the pods in phase Running that mount the claim, sorted.
	RunningPodsUsingPVC(namespace, claim string) []string
	// ImagesUsingStorageClass names the images ("namespace/name", sorted) whose image
	// storage class is the class.
	ImagesUsingStorageClass(class string) []string
	VirtualMachine(namespace, name string) (*kubevirtv1.VirtualMachine, bool)
	VolumeSnapshotClass(name string) (*VolumeSnapshotClass, bool)
	// DefaultVolumeSnapshotClasses names the classes of a CSI driver marked default, sorted
	// (the snapshot controller refuses to choose when there are several).
	DefaultVolumeSnapshotClasses(driver string) []string
	// VolumeSnapshotClassesOfDriver names every class of a CSI driver, sorted.
	VolumeSnapshotClassesOfDriver(driver string) []string
	// VirtualMachinesUsingPVC are the VMs whose volumes or hotplug requests name the claim,
	// sorted by name.
	VirtualMachinesUsingPVC(namespace, claim string) []*kubevirtv1.VirtualMachine
	// ImageOfClass is the image whose status.storageClassName is the class: the image a
	// Longhorn backing-image class was made for (VM-V4). With several (Harvester makes one
	// class per image), the first by namespace and name.
	ImageOfClass(class string) (*harvester.VirtualMachineImage, bool)
	// NamespaceLabels are a namespace's labels (the rollout's namespaceSelector); false
	// when the namespace is not in the view.
	NamespaceLabels(name string) (map[string]string, bool)
}

// Index names.
const (
	indexDefault = "default" // storage classes marked default under "true"; snapshot classes under their driver
	indexPVC     = "pvc"     // pods by "namespace/claimName" of each PVC volume
	indexClass   = "class"   // images by their image storage class
	indexDriver  = "driver"  // snapshot classes by their driver
	indexStatus  = "status"  // images by status.storageClassName
)

// Cache implements View over client-go indexers.
type Cache struct {
	classes, pvcs, images, pods, vms, snapshotClasses, profiles, snapshots cache.Indexer
	synced                                                                 []namedSync
	// namespaces holds every namespace's name and labels (namespaces.go); it is not in
	// byResource, as nothing audits namespaces.
	namespaces cache.Indexer
	// settings holds Harvester's Settings by name (harvester.SettingNames); harvester says
	// whether the cluster has them (settings.go).
	settings        map[string]cache.Indexer
	harvester       func() bool
	settingsGen     atomic.Uint64
	settingsChanged atomic.Pointer[func()]
	// byResource holds every indexer by resource name, informers the watch caches' informers
	// (none for a file view): what audit lists and subscribes to (audit.go).
	byResource map[string]cache.Indexer
	informers  map[string]cache.SharedIndexInformer
}

type namedSync struct {
	name   string
	synced cache.InformerSynced
}

var _ View = (*Cache)(nil)

func newIndexers() map[string]cache.Indexers {
	ix := map[string]cache.Indexers{
		"storageclasses":         {indexDefault: indexDefaultClass},
		"persistentvolumeclaims": {},
		"virtualmachineimages":   {indexClass: indexImageClass, indexStatus: indexImageStatusClass},
		"pods":                   {indexPVC: indexPodClaims},
		"virtualmachines":        {},
		"volumesnapshotclasses":  {indexDefault: indexDefaultSnapshotClass, indexDriver: indexSnapshotClassDriver},
		"storageprofiles":        {},
		"volumesnapshots":        {},
	}
	for res, more := range dependentIndexers {
		for name, f := range more {
			if ix[res] == nil {
				ix[res] = cache.Indexers{}
			}
			ix[res][name] = f
		}
	}
	return ix
}

func indexDefaultClass(obj any) ([]string, error) {
	if sc, ok := obj.(*storagev1.StorageClass); ok && sc.Annotations[harvester.AnnIsDefaultClass] == "true" {
		return []string{"true"}, nil
	}
	return nil, nil
}

func indexImageClass(obj any) ([]string, error) {
	if img, ok := obj.(*harvester.VirtualMachineImage); ok && img.StorageClassName() != "" {
		return []string{img.StorageClassName()}, nil
	}
	return nil, nil
}

func indexImageStatusClass(obj any) ([]string, error) {
	if img, ok := obj.(*harvester.VirtualMachineImage); ok && img.Status.StorageClassName != "" {
		return []string{img.Status.StorageClassName}, nil
	}
	return nil, nil
}

func indexPodClaims(obj any) ([]string, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, nil
	}
	var keys []string
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			keys = append(keys, pod.Namespace+"/"+v.PersistentVolumeClaim.ClaimName)
		}
	}
	return keys, nil
}

func get[T any](ix cache.Indexer, key string) (T, bool) {
	var zero T
	obj, ok, err := ix.GetByKey(key)
	if err != nil || !ok {
		return zero, false
	}
	t, ok := obj.(T)
	return t, ok
}

// NamespacedName is "namespace/name", or name for a cluster-scoped object: the indexers'
// key, and how messages name an object.
func NamespacedName(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

func (c *Cache) StorageClass(name string) (*storagev1.StorageClass, bool) {
	return get[*storagev1.StorageClass](c.classes, name)
}

func (c *Cache) DefaultStorageClass() (*storagev1.StorageClass, bool) {
	objs, _ := c.classes.ByIndex(indexDefault, "true")
	var best *storagev1.StorageClass
	for _, o := range objs {
		sc, ok := o.(*storagev1.StorageClass)
		if !ok {
			continue
		}
		if best == nil || newer(sc, best) {
			best = sc
		}
	}
	return best, best != nil
}

func newer(a, b *storagev1.StorageClass) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return b.CreationTimestamp.Before(&a.CreationTimestamp)
	}
	return a.Name < b.Name
}

func (c *Cache) PVC(namespace, name string) (*corev1.PersistentVolumeClaim, bool) {
	return get[*corev1.PersistentVolumeClaim](c.pvcs, NamespacedName(namespace, name))
}

func (c *Cache) Image(namespace, name string) (*harvester.VirtualMachineImage, bool) {
	return get[*harvester.VirtualMachineImage](c.images, NamespacedName(namespace, name))
}

func (c *Cache) RunningPodsUsingPVC(namespace, claim string) []string {
	objs, _ := c.pods.ByIndex(indexPVC, namespace+"/"+claim)
	var names []string
	for _, o := range objs {
		if pod, ok := o.(*corev1.Pod); ok && pod.Status.Phase == corev1.PodRunning {
			names = append(names, pod.Name)
		}
	}
	slices.Sort(names)
	return names
}

func (c *Cache) ImagesUsingStorageClass(class string) []string {
	objs, _ := c.images.ByIndex(indexClass, class)
	names := make([]string, 0, len(objs))
	for _, o := range objs {
		if img, ok := o.(*harvester.VirtualMachineImage); ok {
			names = append(names, img.Namespace+"/"+img.Name)
		}
	}
	slices.Sort(names)
	return names
}

func (c *Cache) VirtualMachine(namespace, name string) (*kubevirtv1.VirtualMachine, bool) {
	return get[*kubevirtv1.VirtualMachine](c.vms, NamespacedName(namespace, name))
}

func (c *Cache) VirtualMachinesUsingPVC(namespace, claim string) []*kubevirtv1.VirtualMachine {
	objs, _ := c.vms.ByIndex(indexPVC, namespace+"/"+claim)
	vms := make([]*kubevirtv1.VirtualMachine, 0, len(objs))
	for _, o := range objs {
		if vm, ok := o.(*kubevirtv1.VirtualMachine); ok {
			vms = append(vms, vm)
		}
	}
	slices.SortFunc(vms, func(a, b *kubevirtv1.VirtualMachine) int { return strings.Compare(a.Name, b.Name) })
	return vms
}

func (c *Cache) ImageOfClass(class string) (*harvester.VirtualMachineImage, bool) {
	objs, _ := c.images.ByIndex(indexStatus, class)
	var first *harvester.VirtualMachineImage
	for _, o := range objs {
		img, ok := o.(*harvester.VirtualMachineImage)
		if ok && (first == nil || NamespacedName(img.Namespace, img.Name) < NamespacedName(first.Namespace, first.Name)) {
			first = img
		}
	}
	return first, first != nil
}

// Synced reports whether every watch cache has synced, and the state of each.
func (c *Cache) Synced() (bool, map[string]bool) {
	all := true
	state := make(map[string]bool, len(c.synced))
	for _, s := range c.synced {
		ok := s.synced()
		state[s.name] = ok
		all = all && ok
	}
	return all, state
}
