package cluster

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// VolumeSnapshotClassGVR is external-snapshotter's VolumeSnapshotClass resource.
var VolumeSnapshotClassGVR = schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshotclasses"}

// AnnDefaultSnapshotClass marks the VolumeSnapshotClass the snapshot controller gives a
// VolumeSnapshot of its driver that names no class.
const AnnDefaultSnapshotClass = "snapshot.storage.kubernetes.io/is-default-class"

// VolumeSnapshotClass is snapshot.storage.k8s.io/v1 VolumeSnapshotClass, reduced to what the
// rules read (the external-snapshotter client module is not worth importing for one field).
type VolumeSnapshotClass struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Driver            string `json:"driver"`
}

// DeepCopyObject implements runtime.Object so classes can live in client-go caches.
func (c *VolumeSnapshotClass) DeepCopyObject() runtime.Object {
	out := *c
	c.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	return &out
}

// snapshotClassFromUnstructured keeps a class's name, annotations and driver.
func snapshotClassFromUnstructured(u *unstructured.Unstructured) *VolumeSnapshotClass {
	driver, _, _ := unstructured.NestedString(u.Object, "driver")
	return &VolumeSnapshotClass{
		TypeMeta: metav1.TypeMeta{APIVersion: u.GetAPIVersion(), Kind: u.GetKind()},
		ObjectMeta: slimMeta(metav1.ObjectMeta{Name: u.GetName(), UID: u.GetUID(), ResourceVersion: u.GetResourceVersion(),
			Annotations: u.GetAnnotations()}),
		Driver: driver,
	}
}

func indexDefaultSnapshotClass(obj any) ([]string, error) {
	if c, ok := obj.(*VolumeSnapshotClass); ok && c.Annotations[AnnDefaultSnapshotClass] == "true" {
		return []string{c.Driver}, nil
	}
	return nil, nil
}

func indexSnapshotClassDriver(obj any) ([]string, error) {
	if c, ok := obj.(*VolumeSnapshotClass); ok {
		return []string{c.Driver}, nil
	}
	return nil, nil
}

func (c *Cache) VolumeSnapshotClass(name string) (*VolumeSnapshotClass, bool) {
	return get[*VolumeSnapshotClass](c.snapshotClasses, name)
}

func (c *Cache) DefaultVolumeSnapshotClasses(driver string) []string {
	return c.snapshotClassNames(indexDefault, driver)
}

func (c *Cache) VolumeSnapshotClassesOfDriver(driver string) []string {
	return c.snapshotClassNames(indexDriver, driver)
}

func (c *Cache) snapshotClassNames(index, driver string) []string {
	objs, _ := c.snapshotClasses.ByIndex(index, driver)
	names := make([]string, 0, len(objs))
	for _, o := range objs {
		if vsc, ok := o.(*VolumeSnapshotClass); ok {
			names = append(names, vsc.Name)
		}
	}
	slices.Sort(names)
	return names
}
