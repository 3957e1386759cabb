package cluster

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
)

// NamespaceGVR is the resource of the metadata-only namespace cache.
var NamespaceGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}

// NamespaceLabels are a namespace's labels, for the rollout's namespaceSelector overrides
// (SPEC §8). false: the namespace is not in the view (not created yet, or the cache lags).
func (c *Cache) NamespaceLabels(name string) (map[string]string, bool) {
	if c.namespaces == nil {
		return nil, false
	}
	obj, ok, _ := c.namespaces.GetByKey(name)
	if !ok {
		return nil, false
	}
	return obj.(*metav1.PartialObjectMetadata).Labels, true
}

// watchNamespaces starts the namespace cache: metadata only (the API server sends no spec
// or status), slimmed to the name and labels.
func (c *Cache) watchNamespaces(meta metadata.Interface) metadatainformer.SharedInformerFactory {
	f := metadatainformer.NewSharedInformerFactory(meta, resync)
	inf := f.ForResource(NamespaceGVR).Informer()
	_ = inf.SetTransform(func(obj any) (any, error) { // fails only once started
		if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
			return slimNamespace(m), nil
		}
		return obj, nil
	})
	c.namespaces = inf.GetIndexer()
	c.synced = append(c.synced, namedSync{"namespaces", inf.HasSynced})
	return f
}

// slimNamespace keeps what NamespaceLabels reads, and the identity the cache keys by.
func slimNamespace(m *metav1.PartialObjectMetadata) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta, ObjectMeta: metav1.ObjectMeta{
		Name: m.Name, UID: m.UID, ResourceVersion: m.ResourceVersion, Labels: m.Labels,
	}}
}
