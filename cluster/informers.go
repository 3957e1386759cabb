package cluster

import (
	"context"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/hcistorage/storage-webhook/harvester"
)

// resync is off: the rules read the caches, nothing reacts to events.
const resync = 0 * time.Second

// StartInformers starts watch caches for every kind the rules read and returns at once;
// Synced reports when they are complete. Typed informers serve the core and storage kinds,
// dynamic informers Harvester's images and Settings, KubeVirt's VMs and external-snapshotter's
// VolumeSnapshotClasses (no generated clients are imported for them). All of them run
// Transform before an object is stored.
func StartInformers(ctx context.Context, cfg *rest.Config) (*Cache, error) {
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return StartInformersFrom(ctx, kube, dyn, meta)
}

// StartInformersFrom is StartInformers over clients at hand (fake ones in tests).
func StartInformersFrom(ctx context.Context, kube kubernetes.Interface, dyn dynamic.Interface, meta metadata.Interface) (*Cache, error) {
	var err error
	typed := informers.NewSharedInformerFactoryWithOptions(kube, resync, informers.WithTransform(Transform))
	untyped := dynamicinformer.NewDynamicSharedInformerFactory(dyn, resync)
	ix := newIndexers()

	c := &Cache{byResource: map[string]cache.Indexer{}, informers: map[string]cache.SharedIndexInformer{}, settings: map[string]cache.Indexer{}}
	add := func(name string, inf cache.SharedIndexInformer) (cache.Indexer, error) {
		if err := inf.SetTransform(Transform); err != nil {
			return nil, err
		}
		if err := inf.AddIndexers(ix[name]); err != nil {
			return nil, err
		}
		c.synced = append(c.synced, namedSync{name, inf.HasSynced})
		c.byResource[name], c.informers[name] = inf.GetIndexer(), inf
		return inf.GetIndexer(), nil
	}
	if c.classes, err = add("storageclasses", typed.Storage().V1().StorageClasses().Informer()); err != nil {
		return nil, err
	}
	if c.pvcs, err = add("persistentvolumeclaims", typed.Core().V1().PersistentVolumeClaims().Informer()); err != nil {
		return nil, err
	}
	if c.pods, err = add("pods", typed.Core().V1().Pods().Informer()); err != nil {
		return nil, err
	}
	if c.images, err = add("virtualmachineimages", untyped.ForResource(harvester.ImageGVR).Informer()); err != nil {
		return nil, err
	}
	if c.vms, err = add("virtualmachines", untyped.ForResource(VirtualMachineGVR).Informer()); err != nil {
		return nil, err
	}
	if c.snapshotClasses, err = add("volumesnapshotclasses", untyped.ForResource(VolumeSnapshotClassGVR).Informer()); err != nil {
		return nil, err
	}
	if c.profiles, err = add("storageprofiles", untyped.ForResource(StorageProfileGVR).Informer()); err != nil {
		return nil, err
	}
	if c.snapshots, err = add("volumesnapshots", untyped.ForResource(VolumeSnapshotGVR).Informer()); err != nil {
		return nil, err
	}
	// Harvester's Settings, when the cluster has them; a plain KubeVirt/CDI cluster has not
	// (SPEC §3.1). Discovery is asked once it answers: installing Harvester under a running
	// service takes a restart.
	if err := c.watchSettings(ctx, kube.Discovery(), dyn); err != nil {
		return nil, err
	}
	namespaces := c.watchNamespaces(meta)
	typed.Start(ctx.Done())
	untyped.Start(ctx.Done())
	namespaces.Start(ctx.Done())
	return c, nil
}
