package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/cache"

	"github.com/hcistorage/storage-webhook/harvester"
)

// Files is a cluster view loaded from YAML/JSON files. Besides the indexed View it keeps
// every object as read, so `check` can find the old object of an UPDATE or DELETE.
type Files struct {
	*Cache
	objects map[ObjectKey]*unstructured.Unstructured
}

// ObjectKey names one object of a cluster view.
type ObjectKey struct {
	Kind, Namespace, Name string
}

// Object returns an object of the view as it was read.
func (f *Files) Object(k ObjectKey) (*unstructured.Unstructured, bool) {
	u, ok := f.objects[k]
	return u, ok
}

// Objects returns every object of the view as it was read, in no particular order.
func (f *Files) Objects() []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, 0, len(f.objects))
	for _, u := range f.objects {
		out = append(out, u)
	}
	return out
}

// LoadFiles reads every .yaml, .yml and .json file under each path (a file or a folder,
// walked recursively in name order). Kinds no rule reads are kept for `check` only.
func LoadFiles(paths ...string) (*Files, error) {
	objs, err := ReadManifests(paths...)
	if err != nil {
		return nil, err
	}
	return NewFiles(objs)
}

// ReadManifests reads the objects of files and folders (walked recursively in name order,
// .yaml, .yml and .json files only), in order.
func ReadManifests(paths ...string) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	for _, p := range paths {
		files, err := manifestFiles(p)
		if err != nil {
			return nil, err
		}
		for _, file := range files {
			more, err := ReadManifestFile(file)
			if err != nil {
				return nil, err
			}
			objs = append(objs, more...)
		}
	}
	return objs, nil
}

// NewFiles builds a view from objects.
func NewFiles(objs []*unstructured.Unstructured) (*Files, error) {
	ix := newIndexers()
	c := &Cache{byResource: map[string]cache.Indexer{}, settings: map[string]cache.Indexer{}}
	mk := func(name string) cache.Indexer {
		c.byResource[name] = cache.NewIndexer(cache.MetaNamespaceKeyFunc, ix[name])
		return c.byResource[name]
	}
	c.classes, c.pvcs, c.images = mk("storageclasses"), mk("persistentvolumeclaims"), mk("virtualmachineimages")
	c.pods, c.vms, c.snapshotClasses = mk("pods"), mk("virtualmachines"), mk("volumesnapshotclasses")
	c.profiles, c.snapshots = mk("storageprofiles"), mk("volumesnapshots")
	c.namespaces = cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	settings := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, name := range harvester.SettingNames {
		c.settings[name] = settings
	}
	// Files are a Harvester cluster when they hold its server-version Setting (SPEC §3.1).
	c.harvester = func() bool { _, ok := c.HarvesterSetting(harvester.SettingServerVersion); return ok }
	f := &Files{Cache: c, objects: map[ObjectKey]*unstructured.Unstructured{}}
	for _, u := range objs {
		key := ObjectKey{u.GetKind(), u.GetNamespace(), u.GetName()}
		if _, dup := f.objects[key]; dup {
			return nil, fmt.Errorf("cluster view holds %s %s twice", key.Kind, NamespacedName(key.Namespace, key.Name))
		}
		f.objects[key] = u
		if err := f.index(u); err != nil {
			return nil, fmt.Errorf("%s %s: %w", key.Kind, NamespacedName(key.Namespace, key.Name), err)
		}
	}
	return f, nil
}

func (f *Files) index(u *unstructured.Unstructured) error {
	var ix cache.Indexer
	var obj any
	switch u.GroupVersionKind().GroupKind().String() {
	case "StorageClass.storage.k8s.io":
		ix, obj = f.classes, &storagev1.StorageClass{}
	case "PersistentVolumeClaim":
		ix, obj = f.pvcs, &corev1.PersistentVolumeClaim{}
	case "Pod":
		ix, obj = f.pods, &corev1.Pod{}
	case "VirtualMachineImage.harvesterhci.io":
		ix, obj = f.images, u.DeepCopy() // Transform converts it, as in the informer
	case "VirtualMachine.kubevirt.io":
		ix, obj = f.vms, u.DeepCopy()
	case "VolumeSnapshotClass.snapshot.storage.k8s.io":
		ix, obj = f.snapshotClasses, u.DeepCopy()
	case "StorageProfile.cdi.kubevirt.io":
		ix, obj = f.profiles, u.DeepCopy()
	case "VolumeSnapshot.snapshot.storage.k8s.io":
		ix, obj = f.snapshots, u.DeepCopy()
	case "Namespace":
		m := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: u.GetName(), UID: u.GetUID(), Labels: u.GetLabels()}}
		return f.namespaces.Add(m)
	case "Setting.harvesterhci.io":
		if !slices.Contains(harvester.SettingNames, u.GetName()) {
			return nil // the service reads no other Setting, as its watches and RBAC do not
		}
		ix, obj = f.settings[u.GetName()], u.DeepCopy()
	default:
		return nil
	}
	if _, untyped := obj.(*unstructured.Unstructured); !untyped {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
			return err
		}
	}
	obj, err := Transform(obj)
	if err != nil {
		return err
	}
	return ix.Add(obj)
}

func manifestFiles(root string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		ext := strings.ToLower(filepath.Ext(path))
		if !d.IsDir() && (path == root || ext == ".yaml" || ext == ".yml" || ext == ".json") {
			files = append(files, path)
		}
		return nil
	})
	slices.Sort(files)
	return files, err
}

// maxManifestBytes bounds one manifest file: cluster views and `check` inputs are read
// whole, and a mistaken path (a disk image, /dev/zero) must fail rather than eat memory.
const maxManifestBytes = 64 << 20

// ReadManifestFile reads the objects of one YAML or JSON file.
func ReadManifestFile(path string) ([]*unstructured.Unstructured, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	objs, err := ReadManifestStream(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return objs, nil
}

// ReadManifestStream reads YAML or JSON documents, several per stream; a List's items are
// its objects and empty documents are skipped.
func ReadManifestStream(r io.Reader) ([]*unstructured.Unstructured, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxManifestBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxManifestBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxManifestBytes)
	}
	return DecodeManifests(data)
}

// DecodeManifests splits YAML or JSON documents into objects. Every object needs
// apiVersion, kind and metadata.name.
func DecodeManifests(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for doc := 1; ; doc++ {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if !u.IsList() {
			if err := checkObject(u); err != nil {
				return nil, fmt.Errorf("document %d: %w", doc, err)
			}
			out = append(out, u)
			continue
		}
		list, err := u.ToList()
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		for i := range list.Items {
			if err := checkObject(&list.Items[i]); err != nil {
				return nil, fmt.Errorf("document %d: items[%d]: %w", doc, i, err)
			}
			out = append(out, &list.Items[i])
		}
	}
}

// checkObject requires what every object of a manifest has: apiVersion, kind and a
// metadata.name (and metadata.namespace, if any) that are strings.
func checkObject(u *unstructured.Unstructured) error {
	for _, field := range []string{"name", "namespace"} {
		if _, _, err := unstructured.NestedString(u.Object, "metadata", field); err != nil {
			return fmt.Errorf("metadata.%s must be a string (quote it in YAML): %v", field, err)
		}
	}
	if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
		return fmt.Errorf("apiVersion, kind and metadata.name are required")
	}
	return nil
}
