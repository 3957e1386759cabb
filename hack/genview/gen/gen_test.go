package gen_test

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/hcistorage/storage-webhook/cluster"
	"github.com/hcistorage/storage-webhook/hack/genview/gen"
	"github.com/hcistorage/storage-webhook/harvester"
	"github.com/hcistorage/storage-webhook/providers"
)

var small = gen.Config{Seed: 7, Namespaces: 5, Classes: 12, Images: 60, PVCs: 400, VMs: 50, Pods: 300}

func generate(t *testing.T, cfg gen.Config) *gen.View {
	t.Helper()
	v, err := gen.Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestGenerateMakesTheConfiguredCounts(t *testing.T) {
	for _, cfg := range []gen.Config{small, {Seed: 1, Namespaces: 3, Classes: 5, Images: 50, PVCs: 20, VMs: 30, Pods: 5}} {
		v := generate(t, cfg)
		got := []int{len(v.Classes), len(v.Images), len(v.PVCs), len(v.VMs), len(v.Pods)}
		if want := []int{cfg.Classes, cfg.Images, cfg.PVCs, cfg.VMs, cfg.Pods}; !reflect.DeepEqual(got, want) {
			t.Errorf("%+v: classes, images, pvcs, vms, pods = %v, want %v", cfg, got, want)
		}
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	a, b := generate(t, small), generate(t, small)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same config gave different views")
	}
	other := small
	other.Seed++
	if reflect.DeepEqual(a, generate(t, other)) {
		t.Fatal("another seed gave the same view")
	}
}

func TestGenerateCoversEveryProfileWithOneDefault(t *testing.T) {
	v := generate(t, small)
	table := providers.Builtins(providers.BehaviourOf(providers.Newest()))
	profiles, defaults := map[string]int{}, 0
	for _, sc := range v.Classes {
		p, ok := table.Match(sc)
		if !ok {
			t.Fatalf("class %s matches no profile", sc.Name)
		}
		profiles[p.Name]++
		if sc.Annotations[harvester.AnnIsDefaultClass] == "true" {
			defaults++
		}
	}
	if defaults != 1 {
		t.Errorf("%d default classes, want 1", defaults)
	}
	for _, p := range table {
		if profiles[p.Name] == 0 {
			t.Errorf("no class of profile %s (got %v)", p.Name, profiles)
		}
	}
}

// TestViewHasWhatTheRulesRead loads the view as the webhook does and finds golden PVCs of cdi
// images, VM disks with image references, and running pods mounting PVCs.
func TestViewHasWhatTheRulesRead(t *testing.T) {
	v := generate(t, small)
	objs, err := v.Objects()
	if err != nil {
		t.Fatal(err)
	}
	view, err := cluster.NewFiles(objs)
	if err != nil {
		t.Fatal(err)
	}
	if sc, ok := view.DefaultStorageClass(); !ok || sc.Name != "harvester-longhorn" {
		t.Errorf("default class = %v, %v", sc, ok)
	}
	var golden, withImage, mounted int
	for _, pvc := range v.PVCs {
		if pvc.Annotations[harvester.AnnGoldenImage] == "true" {
			img, ok := view.Image(pvc.Namespace, pvc.Name)
			if !ok || img.Spec.Backend != harvester.BackendCDI {
				t.Errorf("golden PVC %s/%s has no cdi image", pvc.Namespace, pvc.Name)
			}
			golden++
		}
		if ref := pvc.Annotations[harvester.AnnImageID]; ref != "" {
			ns, name, _ := strings.Cut(ref, "/")
			if _, ok := view.Image(ns, name); !ok {
				t.Errorf("PVC %s/%s refers to image %s, which does not exist", pvc.Namespace, pvc.Name, ref)
			}
			withImage++
		}
		if len(view.RunningPodsUsingPVC(pvc.Namespace, pvc.Name)) > 0 {
			mounted++
		}
	}
	var templates, running int
	for _, vm := range v.VMs {
		if vm.Annotations[harvester.AnnVolumeClaimTemplates] != "" || len(vm.Spec.DataVolumeTemplates) > 0 {
			templates++
		}
	}
	for _, pod := range v.Pods {
		if pod.Status.Phase == corev1.PodRunning {
			running++
		}
	}
	if golden == 0 || withImage == 0 || mounted == 0 || templates != len(v.VMs) || running == 0 || running == len(v.Pods) {
		t.Errorf("golden PVCs %d, PVCs with an image reference %d, PVCs mounted by running pods %d, VMs with disk templates %d of %d, running pods %d of %d",
			golden, withImage, mounted, templates, len(v.VMs), running, len(v.Pods))
	}
}

func TestGenerateRefusesBadConfigs(t *testing.T) {
	for _, cfg := range []gen.Config{{Namespaces: 0, Classes: 1}, {Namespaces: 1, Classes: 0, PVCs: 1}, {Namespaces: 1, Classes: 1, Pods: -1}} {
		if _, err := gen.Generate(cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}
