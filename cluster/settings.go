package cluster

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"

	"github.com/hcistorage/storage-webhook/harvester"
)

// The Cache is the providers.SettingsSource of serve, check, review, audit and profiles.

// HarvesterSetting returns one of the Settings the service reads.
func (c *Cache) HarvesterSetting(name string) (*harvester.Setting, bool) {
	ix, ok := c.settings[name]
	if !ok {
		return nil, false
	}
	return get[*harvester.Setting](ix, name)
}

// HarvesterInstalled reports whether the cluster has Harvester's Settings: a live cluster
// whose API serves settings.harvesterhci.io, or files that hold a server-version Setting.
func (c *Cache) HarvesterInstalled() bool { return c.harvester != nil && c.harvester() }

// SettingsGeneration counts the events of the Settings' watches; a file view's never changes.
func (c *Cache) SettingsGeneration() uint64 { return c.settingsGen.Load() }

// OnSettingsChange calls f after each event of the Settings' watches (after the generation
// has moved), so that serve logs a new release when it happens rather than at the next
// request. Call it before the caches are used.
func (c *Cache) OnSettingsChange(f func()) { c.settingsChanged.Store(&f) }

// hasSettingsAPI asks discovery whether the API server serves Harvester's Settings. Only
// "not found" means no: any other error is returned, so that a Harvester cluster is not
// taken for a plain one over a transient failure.
func hasSettingsAPI(ctx context.Context, disco discovery.DiscoveryInterface) (bool, error) {
	list, err := discovery.ToDiscoveryInterfaceWithContext(disco).ServerResourcesForGroupVersionWithContext(ctx, harvester.SettingGVR.GroupVersion().String())
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("discover %s: %w", harvester.SettingGVR.GroupVersion(), err)
	}
	for _, r := range list.APIResources {
		if r.Name == harvester.SettingGVR.Resource {
			return true, nil
		}
	}
	return false, nil
}

// settingsWatch is the state of the Settings' watches: discovery first says whether the
// cluster has them (SPEC §3.1: a plain KubeVirt/CDI cluster has not), then their informers
// run, or never do.
type settingsWatch struct {
	discovered, installed atomic.Bool
	informers             []cache.SharedIndexInformer
	synced                []cache.InformerSynced // informers' and their handlers'
}

// synced is true once discovery has answered and, on a Harvester cluster, every Settings
// watch has synced and its handler has seen the initial list (so the generation counts it).
func (w *settingsWatch) isSynced() bool {
	if !w.discovered.Load() {
		return false
	}
	if !w.installed.Load() {
		return true // nothing to watch
	}
	for _, s := range w.synced {
		if !s() {
			return false
		}
	}
	return true
}

// watchSettings makes a watch of each Setting the service reads, selected by name, so its
// RBAC can name them (resourceNames) and it reads no other Setting, and starts them once
// discovery (asked until it answers, as the API server may be unreachable at start) says
// the cluster has Settings. Every event moves the settings generation.
func (c *Cache) watchSettings(ctx context.Context, disco discovery.DiscoveryInterface, dyn dynamic.Interface) error {
	w := &settingsWatch{}
	bump := func(any) {
		c.settingsGen.Add(1)
		if f := c.settingsChanged.Load(); f != nil {
			(*f)()
		}
	}
	for _, name := range harvester.SettingNames {
		f := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, resync, "", func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		})
		inf := f.ForResource(harvester.SettingGVR).Informer()
		if err := inf.SetTransform(Transform); err != nil {
			return err
		}
		// Not in c.synced: the watch may never start (no Harvester); w.isSynced covers it.
		res := "settings/" + name
		c.byResource[res], c.informers[res] = inf.GetIndexer(), inf
		reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: bump, UpdateFunc: func(_, o any) { bump(o) }, DeleteFunc: bump,
		})
		if err != nil {
			return err
		}
		c.settings[name] = inf.GetIndexer()
		w.informers = append(w.informers, inf)
		w.synced = append(w.synced, inf.HasSynced, reg.HasSynced)
	}
	c.harvester = w.installed.Load
	c.synced = append(c.synced, namedSync{"settings", w.isSynced})
	go func() {
		backoff := wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Steps: math.MaxInt32, Cap: 30 * time.Second}
		for {
			installed, err := hasSettingsAPI(ctx, disco)
			if err == nil {
				w.installed.Store(installed)
				if installed {
					for _, inf := range w.informers {
						go inf.Run(ctx.Done())
					}
				}
				w.discovered.Store(true)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff.Step()):
			}
		}
	}()
	return nil
}
