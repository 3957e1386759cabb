// Package gen generates large, realistic cluster views for benchmarks and load tests: storage
// classes of every built-in provider profile (exactly one default), images with the golden
// PVCs CDI fills for them, VMs whose volumeClaimTemplates or dataVolumeTemplates take their
// root disk from an image, the disk PVCs of those VMs (with image references), data PVCs,
// and pods (virt-launchers of running VMs and ordinary workloads) mounting PVCs, spread over
// namespaces. Objects are built from the API types (maps for images, whose Go types this
// module does not import) and depend only on the Config: the same seed gives the same view.
//
// `go run ./hack/genview` writes a view as YAML files; the webhook benchmarks build one in
// process with View.Objects and cluster.NewFiles.
package gen

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"

	"github.com/hcistorage/storage-webhook/harvester"
)

// Config says how many objects of each kind to make. PVCs and Pods are exact totals: golden
// PVCs come first, then the disks of the VMs, then data PVCs; virt-launcher pods of running
// VMs come first, then workload pods.
type Config struct {
	Seed       uint64
	Namespaces int
	Classes    int
	Images     int
	PVCs       int
	VMs        int
	Pods       int
}

// Full is the size the benchmarks use: 10,000 PVCs, 2,000 images, 2,000 VMs, 10,000 pods and
// 200 storage classes over 50 namespaces.
func Full() Config {
	return Config{Seed: 1, Namespaces: 50, Classes: 200, Images: 2000, PVCs: 10000, VMs: 2000, Pods: 10000}
}

func (c Config) check() error {
	for _, n := range []struct {
		name string
		v    int
	}{{"namespaces", c.Namespaces}, {"classes", c.Classes}, {"images", c.Images}, {"pvcs", c.PVCs}, {"vms", c.VMs}, {"pods", c.Pods}} {
		if n.v < 0 {
			return fmt.Errorf("%s must not be negative, got %d", n.name, n.v)
		}
	}
	if c.Namespaces == 0 {
		return fmt.Errorf("namespaces must be at least 1")
	}
	if c.Classes == 0 && (c.Images > 0 || c.PVCs > 0 || c.VMs > 0) {
		return fmt.Errorf("classes must be at least 1 when there are images, PVCs or VMs")
	}
	return nil
}

// View is a generated cluster view, one slice per kind.
type View struct {
	Classes []*storagev1.StorageClass
	Images  []*unstructured.Unstructured
	PVCs    []*corev1.PersistentVolumeClaim
	VMs     []*kubevirtv1.VirtualMachine
	Pods    []*corev1.Pod
}

// File is the objects of one kind and the name of the file they go to.
type File struct {
	Name    string
	Objects []runtime.Object
}

// Files lists the view's objects by kind, in the order a cluster would be filled.
func (v *View) Files() []File {
	return []File{
		{"storageclasses.yaml", objects(v.Classes)},
		{"images.yaml", objects(v.Images)},
		{"pvcs.yaml", objects(v.PVCs)},
		{"vms.yaml", objects(v.VMs)},
		{"pods.yaml", objects(v.Pods)},
	}
}

func objects[T runtime.Object](in []T) []runtime.Object {
	out := make([]runtime.Object, len(in))
	for i, o := range in {
		out[i] = o
	}
	return out
}

// Objects converts the view to unstructured objects, as cluster.NewFiles takes them.
func (v *View) Objects() ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, f := range v.Files() {
		for _, o := range f.Objects {
			if u, ok := o.(*unstructured.Unstructured); ok {
				out = append(out, u)
				continue
			}
			m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.Name, err)
			}
			out = append(out, &unstructured.Unstructured{Object: m})
		}
	}
	return out, nil
}

// Generate makes a view of the configured size.
func Generate(cfg Config) (*View, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	g := &generator{
		cfg:  cfg,
		rng:  rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15)),
		base: time.Date(2025, 9, 1, 8, 0, 0, 0, time.UTC),
		used: map[string]bool{},
	}
	for i := range cfg.Namespaces {
		g.namespaces = append(g.namespaces, fmt.Sprintf("tenant-%02d", i))
	}
	g.storageClasses()
	g.imageObjects()
	g.virtualMachines()
	g.pvcObjects()
	g.exportSources()
	g.pods()
	return &g.view, nil
}

const gi = int64(1) << 30

// Storage class families: the built-in profiles (SPEC §3), with Ceph RBD and NFS for "other".
type family int

const (
	longhornV1 family = iota
	longhornV2
	lvm
	rbd
	nfs
	families
)

type class struct {
	name   string
	family family
}

type image struct {
	ns, name, class, os string
	cdi                 bool
	minSize             int64
	uid                 types.UID
	export              map[string]any // the spec of an export-from-volume image, filled later
}

// disk is a PVC a VM uses: made by Harvester from volumeClaimTemplates or by CDI from a
// dataVolumeTemplate.
type disk struct {
	ns, name, class, imageID string
	size                     int64
	block                    bool
}

type generator struct {
	cfg        Config
	rng        *rand.Rand
	base       time.Time
	serial     int
	used       map[string]bool
	namespaces []string
	view       View

	classes     []class
	images      []image
	imagesByNS  map[string][]int
	vmDisks     []disk
	runningVMs  []runningVM
	dataPVCs    []disk // PVCs for workload pods and export sources
	exportsLeft []int  // images whose export source is still to be chosen
}

type runningVM struct {
	ns, name string
	uid      types.UID
	claims   []string
}

// alphabet is the one Kubernetes uses for generated name suffixes.
const alphabet = "bcdfghjklmnpqrstvwxz2456789"

func (g *generator) suffix(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[g.rng.IntN(len(alphabet))]
	}
	return string(b)
}

// unique returns prefix+suffix, unique among the names of kind in ns.
func (g *generator) unique(kind, ns, prefix string, n int) string {
	for {
		name := prefix + g.suffix(n)
		if key := kind + "/" + ns + "/" + name; !g.used[key] {
			g.used[key] = true
			return name
		}
	}
}

func (g *generator) uid() types.UID {
	hi, lo := g.rng.Uint64(), g.rng.Uint64()
	hi = hi&^0xf000 | 0x4000     // version 4
	lo = lo&^(0xc<<60) | 0x8<<60 // RFC 4122 variant
	return types.UID(fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", hi>>32, hi>>16&0xffff, hi&0xffff, lo>>48, lo&0xffffffffffff))
}

func (g *generator) ns() string { return g.namespaces[g.rng.IntN(len(g.namespaces))] }

// meta is the metadata every stored object has: identity, a creation time that grows with
// each object, and a resource version.
func (g *generator) meta(ns, name string) metav1.ObjectMeta {
	g.serial++
	return metav1.ObjectMeta{
		Name: name, Namespace: ns, UID: g.uid(),
		ResourceVersion:   fmt.Sprint(1000000 + g.serial*7),
		CreationTimestamp: metav1.NewTime(g.base.Add(time.Duration(g.serial) * 17 * time.Second)),
	}
}

func quantity(bytes int64) resource.Quantity { return *resource.NewQuantity(bytes, resource.BinarySI) }

// ceilGi rounds a size up to whole GiB, at least 1Gi.
func ceilGi(bytes int64) int64 { return max(1, (bytes+gi-1)/gi) * gi }

func (g *generator) storageClasses() {
	for i := range g.cfg.Classes {
		f := family(i % int(families))
		sc := &storagev1.StorageClass{
			TypeMeta:             metav1.TypeMeta{APIVersion: "storage.k8s.io/v1", Kind: "StorageClass"},
			ReclaimPolicy:        ptr.To(corev1.PersistentVolumeReclaimDelete),
			AllowVolumeExpansion: ptr.To(true),
			VolumeBindingMode:    ptr.To(storagev1.VolumeBindingImmediate),
		}
		var name string
		ann := map[string]string{}
		switch f {
		case longhornV1:
			replicas := 1 + g.rng.IntN(3)
			name = fmt.Sprintf("longhorn-r%d-%03d", replicas, i)
			sc.Provisioner = "driver.longhorn.io"
			sc.Parameters = map[string]string{"numberOfReplicas": fmt.Sprint(replicas), "staleReplicaTimeout": "30", "migratable": "true"}
			if i == 0 {
				name = "harvester-longhorn"
				ann[harvester.AnnIsDefaultClass] = "true" // the one default class
			}
		case longhornV2:
			replicas := 1 + g.rng.IntN(3)
			name = fmt.Sprintf("longhorn-v2-r%d-%03d", replicas, i)
			sc.Provisioner = "driver.longhorn.io"
			sc.Parameters = map[string]string{"dataEngine": "v2", "numberOfReplicas": fmt.Sprint(replicas), "migratable": "true"}
			ann[harvester.AnnCDIClassCloneStrategy] = "copy"
		case lvm:
			kind := []string{"striped", "dm-thin"}[g.rng.IntN(2)]
			name = fmt.Sprintf("lvm-%s-%03d", kind, i)
			sc.Provisioner = "lvm.driver.harvesterhci.io"
			sc.Parameters = map[string]string{"type": kind, "vgName": fmt.Sprintf("vg-data-%d", g.rng.IntN(4))}
			sc.VolumeBindingMode = ptr.To(storagev1.VolumeBindingWaitForFirstConsumer)
			ann[harvester.AnnCDIClassCloneStrategy] = "snapshot"
		case rbd:
			pool := []string{"ssd", "hdd", "nvme"}[g.rng.IntN(3)]
			name = fmt.Sprintf("rbd-%s-%03d", pool, i)
			sc.Provisioner = "rbd.csi.ceph.com"
			sc.Parameters = map[string]string{
				"clusterID": "b9127830-b0cc-4e34-aa47-9d1a2e9949a8", "pool": pool, "imageFeatures": "layering",
				"csi.storage.k8s.io/provisioner-secret-name":       "csi-rbd-secret",
				"csi.storage.k8s.io/provisioner-secret-namespace":  "ceph-csi-rbd",
				"csi.storage.k8s.io/controller-expand-secret-name": "csi-rbd-secret",
				"csi.storage.k8s.io/node-stage-secret-name":        "csi-rbd-secret",
			}
		case nfs:
			name = fmt.Sprintf("nfs-%03d", i)
			sc.Provisioner = "nfs.csi.k8s.io"
			sc.Parameters = map[string]string{"server": fmt.Sprintf("nfs-%d.storage.example", g.rng.IntN(8)), "share": "/exports/harvester"}
			sc.AllowVolumeExpansion = ptr.To(false)
		}
		sc.ObjectMeta = g.meta("", name)
		if len(ann) > 0 {
			sc.Annotations = ann
		}
		g.classes = append(g.classes, class{name, f})
		g.view.Classes = append(g.view.Classes, sc)
	}
}

// distros are the images people upload: OS, file name, file size and virtual size.
var distros = []struct {
	os, file      string
	size, virtual int64
}{
	{"debian", "debian-12-generic-amd64.qcow2", 412090368, 2 * gi},
	{"ubuntu", "noble-server-cloudimg-amd64.img", 597000192, 3758096384},
	{"rocky", "Rocky-9-GenericCloud-Base.latest.x86_64.qcow2", 609812480, 10 * gi},
	{"opensuse", "openSUSE-Leap-15.6-Minimal-VM.x86_64-Cloud.qcow2", 274726912, 24 * gi},
	{"fedora", "Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2", 541351936, 5 * gi},
	{"windows", "SERVER_EVAL_x64FRE_en-us.iso", 5296713728, 5296713728},
	{"alpine", "nocloud_alpine-3.20.3-x86_64-bios-cloudinit-r0.qcow2", 155123712, 200 << 20},
}

func (g *generator) imageObjects() {
	g.imagesByNS = map[string][]int{}
	for range g.cfg.Images {
		ns := g.ns()
		name := g.unique("image", ns, "image-", 5)
		c := g.classes[g.rng.IntN(len(g.classes))]
		d := distros[g.rng.IntN(len(distros))]
		backend := harvester.BackendCDI
		if c.family == longhornV1 {
			backend = harvester.BackendBackingImage
		}
		meta := g.meta(ns, name)
		img := image{ns: ns, name: name, class: c.name, os: d.os, cdi: backend == harvester.BackendCDI, uid: meta.UID}

		spec := map[string]any{
			"backend": backend, "displayName": d.file, "retry": int64(3), "targetStorageClassName": c.name,
		}
		status := map[string]any{"storageClassName": c.name}
		switch r := g.rng.IntN(100); {
		case r < 80:
			spec["sourceType"] = "download"
			spec["url"] = "http://mirror.example/" + d.file
			status["appliedUrl"] = spec["url"]
		case r < 95:
			spec["sourceType"] = "upload"
		default:
			spec["sourceType"] = harvester.SourceExportFromVolume
			img.export = spec
			g.exportsLeft = append(g.exportsLeft, len(g.images))
		}
		if g.rng.IntN(100) < 3 { // still importing: sizes not known yet
			status["progress"] = int64(g.rng.IntN(100))
			status["conditions"] = []any{condition("Initialized", "True", meta.CreationTimestamp), condition("Imported", "Unknown", meta.CreationTimestamp)}
		} else {
			img.minSize = max(d.size, d.virtual)
			status["progress"] = int64(100)
			status["size"] = d.size
			status["virtualSize"] = d.virtual
			status["conditions"] = []any{condition("Initialized", "True", meta.CreationTimestamp), condition("Imported", "True", meta.CreationTimestamp)}
		}
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": harvester.ImageGVR.GroupVersion().String(), "kind": "VirtualMachineImage",
			"metadata": map[string]any{
				"name": name, "namespace": ns, "generateName": "image-", "uid": string(meta.UID),
				"resourceVersion": meta.ResourceVersion, "generation": int64(1),
				"creationTimestamp": meta.CreationTimestamp.UTC().Format(time.RFC3339),
				"labels":            map[string]any{"harvesterhci.io/image-type": "raw_qcow2", "harvesterhci.io/os-type": d.os},
				"annotations":       map[string]any{harvester.AnnStorageClassName: c.name},
			},
			"spec":   spec,
			"status": status,
		}}
		g.imagesByNS[ns] = append(g.imagesByNS[ns], len(g.images))
		g.images = append(g.images, img)
		g.view.Images = append(g.view.Images, u)
	}
}

func condition(typ, status string, t metav1.Time) map[string]any {
	return map[string]any{"type": typ, "status": status, "lastUpdateTime": t.UTC().Format(time.RFC3339)}
}

var workloads = []string{"web", "db", "cache", "build", "ci-runner", "api", "worker", "vdi", "monitor", "gateway"}

func (g *generator) virtualMachines() {
	for i := range g.cfg.VMs {
		ns := g.ns()
		name := fmt.Sprintf("%s-%04d", workloads[g.rng.IntN(len(workloads))], i)
		meta := g.meta(ns, name)

		// The root disk comes from an image of the namespace when it has one.
		var img *image
		if ids := g.imagesByNS[ns]; len(ids) > 0 {
			img = &g.images[ids[g.rng.IntN(len(ids))]]
		} else if len(g.images) > 0 {
			img = &g.images[g.rng.IntN(len(g.images))]
		}
		harvesterStyle := img == nil || !img.cdi || g.rng.IntN(100) < 85
		running := g.rng.IntN(100) < 75
		strategy := kubevirtv1.RunStrategyRerunOnFailure
		if !running {
			strategy = kubevirtv1.RunStrategyHalted
		}

		var disks []disk
		root := disk{ns: ns, class: g.classes[g.rng.IntN(len(g.classes))].name, size: (20 + 10*int64(g.rng.IntN(5))) * gi, block: true}
		if img != nil {
			root.class = img.class
			root.imageID = img.ns + "/" + img.name
			root.size = max(root.size, ceilGi(img.minSize)+10*gi*int64(g.rng.IntN(3)))
		}
		disks = append(disks, root)
		for range g.rng.IntN(4) {
			disks = append(disks, disk{ns: ns, class: g.classes[g.rng.IntN(len(g.classes))].name, size: int64(10+10*g.rng.IntN(50)) * gi, block: true})
		}

		vm := &kubevirtv1.VirtualMachine{
			TypeMeta:   metav1.TypeMeta{APIVersion: "kubevirt.io/v1", Kind: "VirtualMachine"},
			ObjectMeta: meta,
		}
		os := "linux"
		if img != nil {
			os = img.os
		}
		vm.Labels = map[string]string{"harvesterhci.io/creator": "harvester", "harvesterhci.io/os": os}
		vm.Annotations = map[string]string{
			"harvesterhci.io/vmRunStrategy":            string(strategy),
			"network.harvesterhci.io/ips":              "[]",
			"kubevirt.io/latest-observed-api-version":  "v1",
			"kubevirt.io/storage-observed-api-version": "v1",
		}
		var templates []corev1.PersistentVolumeClaim
		var volumes []kubevirtv1.Volume
		var devDisks []kubevirtv1.Disk
		for j := range disks {
			d := &disks[j]
			mode := corev1.PersistentVolumeBlock
			var claimAnn map[string]string
			if d.imageID != "" {
				claimAnn = map[string]string{harvester.AnnImageID: d.imageID}
			}
			vol := kubevirtv1.Volume{Name: fmt.Sprintf("disk-%d", j)}
			if harvesterStyle {
				d.name = g.unique("pvc", ns, fmt.Sprintf("%s-disk-%d-", name, j), 5)
				templates = append(templates, corev1.PersistentVolumeClaim{
					ObjectMeta: metav1.ObjectMeta{Name: d.name, Annotations: claimAnn},
					Spec: corev1.PersistentVolumeClaimSpec{
						AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}, VolumeMode: &mode,
						StorageClassName: ptr.To(d.class),
						Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: quantity(d.size)}},
					},
				})
				vol.PersistentVolumeClaim = &kubevirtv1.PersistentVolumeClaimVolumeSource{
					PersistentVolumeClaimVolumeSource: corev1.PersistentVolumeClaimVolumeSource{ClaimName: d.name}}
			} else {
				// Plain KubeVirt: the root disk clones the image's golden PVC, data disks are blank.
				d.name = fmt.Sprintf("%s-disk-%d", name, j)
				g.used["pvc/"+ns+"/"+d.name] = true
				src := &cdiv1.DataVolumeSource{Blank: &cdiv1.DataVolumeBlankImage{}}
				if d.imageID != "" {
					src = &cdiv1.DataVolumeSource{PVC: &cdiv1.DataVolumeSourcePVC{Namespace: img.ns, Name: img.name}}
				}
				vm.Spec.DataVolumeTemplates = append(vm.Spec.DataVolumeTemplates, kubevirtv1.DataVolumeTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Name: d.name},
					Spec: cdiv1.DataVolumeSpec{Source: src, Storage: &cdiv1.StorageSpec{
						AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, VolumeMode: &mode,
						StorageClassName: ptr.To(d.class),
						Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: quantity(d.size)}},
					}},
				})
				vol.DataVolume = &kubevirtv1.DataVolumeSource{Name: d.name}
			}
			volumes = append(volumes, vol)
			dd := kubevirtv1.Disk{Name: vol.Name, DiskDevice: kubevirtv1.DiskDevice{Disk: &kubevirtv1.DiskTarget{Bus: kubevirtv1.DiskBusVirtio}}}
			if j == 0 {
				dd.BootOrder = ptr.To(uint(1))
			}
			devDisks = append(devDisks, dd)
		}
		if templates != nil {
			vct, err := json.Marshal(templates)
			if err != nil {
				panic(err) // typed PVCs always marshal
			}
			vm.Annotations[harvester.AnnVolumeClaimTemplates] = string(vct)
		}
		devDisks = append(devDisks, kubevirtv1.Disk{Name: "cloudinitdisk", DiskDevice: kubevirtv1.DiskDevice{Disk: &kubevirtv1.DiskTarget{Bus: kubevirtv1.DiskBusVirtio}}})
		volumes = append(volumes, kubevirtv1.Volume{Name: "cloudinitdisk", VolumeSource: kubevirtv1.VolumeSource{
			CloudInitNoCloud: &kubevirtv1.CloudInitNoCloudSource{
				UserDataSecretRef:    &corev1.LocalObjectReference{Name: name + "-" + g.suffix(5)},
				NetworkDataSecretRef: &corev1.LocalObjectReference{Name: name + "-" + g.suffix(5)},
			}}})

		cores := uint32(1 << g.rng.IntN(4))
		memory := quantity(int64(cores) * 2 * gi)
		interfaces := []kubevirtv1.Interface{{Name: "default", Model: "virtio",
			InterfaceBindingMethod: kubevirtv1.InterfaceBindingMethod{Masquerade: &kubevirtv1.InterfaceMasquerade{}}}}
		networks := []kubevirtv1.Network{{Name: "default", NetworkSource: kubevirtv1.NetworkSource{Pod: &kubevirtv1.PodNetwork{}}}}
		if g.rng.IntN(2) == 0 {
			vlan := fmt.Sprintf("vlan%d", 10+g.rng.IntN(20))
			interfaces = append(interfaces, kubevirtv1.Interface{Name: vlan, Model: "virtio",
				InterfaceBindingMethod: kubevirtv1.InterfaceBindingMethod{Bridge: &kubevirtv1.InterfaceBridge{}}})
			networks = append(networks, kubevirtv1.Network{Name: vlan, NetworkSource: kubevirtv1.NetworkSource{
				Multus: &kubevirtv1.MultusNetwork{NetworkName: "default/" + vlan}}})
		}
		vm.Spec.RunStrategy = ptr.To(strategy)
		vm.Spec.Template = &kubevirtv1.VirtualMachineInstanceTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"harvesterhci.io/vmName": name}},
			Spec: kubevirtv1.VirtualMachineInstanceSpec{
				Domain: kubevirtv1.DomainSpec{
					CPU:      &kubevirtv1.CPU{Cores: cores, Sockets: 1, Threads: 1},
					Memory:   &kubevirtv1.Memory{Guest: &memory},
					Machine:  &kubevirtv1.Machine{Type: "q35"},
					Features: &kubevirtv1.Features{ACPI: kubevirtv1.FeatureState{Enabled: ptr.To(true)}},
					Resources: kubevirtv1.ResourceRequirements{Limits: corev1.ResourceList{
						corev1.ResourceCPU: *resource.NewQuantity(int64(cores), resource.DecimalSI), corev1.ResourceMemory: memory}},
					Devices: kubevirtv1.Devices{
						Disks: devDisks, Interfaces: interfaces,
						Inputs: []kubevirtv1.Input{{Name: "tablet", Type: "tablet", Bus: "usb"}},
					},
				},
				Hostname:                      name,
				Networks:                      networks,
				Volumes:                       volumes,
				EvictionStrategy:              ptr.To(kubevirtv1.EvictionStrategyLiveMigrateIfPossible),
				TerminationGracePeriodSeconds: ptr.To(int64(120)),
			},
		}
		vm.Status = kubevirtv1.VirtualMachineStatus{PrintableStatus: kubevirtv1.VirtualMachineStatusStopped}
		if running {
			vm.Status = kubevirtv1.VirtualMachineStatus{Created: true, Ready: true, PrintableStatus: kubevirtv1.VirtualMachineStatusRunning}
			rv := runningVM{ns: ns, name: name, uid: meta.UID}
			for _, d := range disks {
				rv.claims = append(rv.claims, d.name)
			}
			g.runningVMs = append(g.runningVMs, rv)
		}
		g.vmDisks = append(g.vmDisks, disks...)
		g.view.VMs = append(g.view.VMs, vm)
	}
}

// pvcObjects makes the golden PVCs of cdi images, the VMs' disks and data PVCs, in that order, up
// to the configured total.
func (g *generator) pvcObjects() {
	left := g.cfg.PVCs
	for _, img := range g.images {
		if left == 0 {
			return
		}
		if !img.cdi {
			continue
		}
		phase := corev1.ClaimBound
		switch {
		case img.minSize == 0:
			phase = corev1.ClaimPending
		case g.rng.IntN(200) == 0:
			phase = corev1.ClaimLost
		}
		size := ceilGi(img.minSize) // CDI sizes the golden PVC for the image
		if img.minSize == 0 {
			size = 10 * gi
		}
		pvc := g.pvc(img.ns, img.name, img.class, size, true, phase)
		pvc.Labels = map[string]string{"app": "containerized-data-importer", "app.kubernetes.io/component": "storage", "app.kubernetes.io/managed-by": "cdi-controller"}
		pvc.Annotations = map[string]string{
			harvester.AnnGoldenImage:               "true",
			"cdi.kubevirt.io/storage.contentType":  "kubevirt",
			"cdi.kubevirt.io/storage.pod.phase":    "Succeeded",
			"cdi.kubevirt.io/storage.usePopulator": "true",
		}
		pvc.OwnerReferences = []metav1.OwnerReference{{APIVersion: "cdi.kubevirt.io/v1beta1", Kind: "DataVolume", Name: img.name,
			UID: g.uid(), Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}
		g.used["pvc/"+img.ns+"/"+img.name] = true
		g.view.PVCs = append(g.view.PVCs, pvc)
		left--
	}
	for _, d := range g.vmDisks {
		if left == 0 {
			return
		}
		pvc := g.pvc(d.ns, d.name, d.class, d.size, d.block, corev1.ClaimBound)
		if d.imageID != "" {
			pvc.Annotations = map[string]string{harvester.AnnImageID: d.imageID}
		}
		g.view.PVCs = append(g.view.PVCs, pvc)
		left--
	}
	for ; left > 0; left-- {
		ns := g.ns()
		app := workloads[g.rng.IntN(len(workloads))]
		d := disk{ns: ns, name: g.unique("pvc", ns, app+"-data-", 5), class: g.classes[g.rng.IntN(len(g.classes))].name,
			size: int64(1+g.rng.IntN(200)) * gi}
		pvc := g.pvc(d.ns, d.name, d.class, d.size, false, corev1.ClaimBound)
		pvc.Labels = map[string]string{"app": app}
		g.dataPVCs = append(g.dataPVCs, d)
		g.view.PVCs = append(g.view.PVCs, pvc)
	}
}

func (g *generator) pvc(ns, name, class string, size int64, block bool, phase corev1.PersistentVolumeClaimPhase) *corev1.PersistentVolumeClaim {
	meta := g.meta(ns, name)
	meta.Finalizers = []string{"kubernetes.io/pvc-protection"}
	mode, access := corev1.PersistentVolumeFilesystem, corev1.ReadWriteOnce
	if block {
		mode, access = corev1.PersistentVolumeBlock, corev1.ReadWriteMany
	}
	pvc := &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: meta,
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{access}, VolumeMode: &mode, StorageClassName: ptr.To(class),
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: quantity(size)}},
		},
		Status: corev1.PersistentVolumeClaimStatus{Phase: phase},
	}
	if phase != corev1.ClaimPending {
		pvc.Spec.VolumeName = "pvc-" + string(meta.UID)
		pvc.Status.AccessModes = pvc.Spec.AccessModes
		pvc.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: quantity(size)}
	}
	return pvc
}

// exportSources points each export-from-volume image at a data PVC or a VM disk.
func (g *generator) exportSources() {
	for _, i := range g.exportsLeft {
		spec := g.images[i].export
		var src disk
		switch {
		case len(g.dataPVCs) > 0:
			src = g.dataPVCs[g.rng.IntN(len(g.dataPVCs))]
		case len(g.vmDisks) > 0:
			src = g.vmDisks[g.rng.IntN(len(g.vmDisks))]
		default:
			src = disk{ns: g.images[i].ns, name: "gone-" + g.suffix(5)} // a source deleted since
		}
		spec["pvcNamespace"], spec["pvcName"] = src.ns, src.name
	}
}

// pods makes the virt-launcher pods of running VMs, then workload pods: half mount a data
// PVC (most Running, some Succeeded or Pending), half mount none.
func (g *generator) pods() {
	left := g.cfg.Pods
	for _, vm := range g.runningVMs {
		if left == 0 {
			return
		}
		pod := g.pod(vm.ns, g.unique("pod", vm.ns, "virt-launcher-"+vm.name+"-", 5), corev1.PodRunning)
		pod.Labels = map[string]string{"kubevirt.io": "virt-launcher", "vm.kubevirt.io/name": vm.name, "harvesterhci.io/vmName": vm.name}
		pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "kubevirt.io/v1", Kind: "VirtualMachineInstance", Name: vm.name,
			UID: vm.uid, Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}
		pod.Spec.Containers = []corev1.Container{{Name: "compute", Image: "registry.suse.com/suse/sles/15.6/virt-launcher:1.4.0",
			Command: []string{"/usr/bin/virt-launcher-monitor", "--qemu-timeout", "323s", "--name", vm.name, "--namespace", vm.ns}}}
		for j, claim := range vm.claims {
			pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: fmt.Sprintf("disk-%d", j), VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}})
			pod.Spec.Containers[0].VolumeDevices = append(pod.Spec.Containers[0].VolumeDevices,
				corev1.VolumeDevice{Name: fmt.Sprintf("disk-%d", j), DevicePath: fmt.Sprintf("/dev/disk-%d", j)})
		}
		pod.Spec.Volumes = append(pod.Spec.Volumes, emptyDir("private"), emptyDir("public"), emptyDir("sockets"))
		g.view.Pods = append(g.view.Pods, pod)
		left--
	}
	for ; left > 0; left-- {
		ns := g.ns()
		app := workloads[g.rng.IntN(len(workloads))]
		var data *disk
		if len(g.dataPVCs) > 0 && g.rng.IntN(2) == 0 {
			data = &g.dataPVCs[g.rng.IntN(len(g.dataPVCs))]
			ns = data.ns
		}
		phase := corev1.PodRunning
		switch r := g.rng.IntN(100); {
		case r < 15:
			phase = corev1.PodSucceeded
		case r < 20:
			phase = corev1.PodPending
		}
		pod := g.pod(ns, g.unique("pod", ns, app+"-"+g.suffix(9)+"-", 5), phase)
		pod.Labels = map[string]string{"app": app, "pod-template-hash": g.suffix(9)}
		pod.Spec.Containers = []corev1.Container{{Name: app, Image: "registry.example/" + app + ":1." + fmt.Sprint(g.rng.IntN(30)),
			Ports: []corev1.ContainerPort{{ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("256Mi")}}}}
		if data != nil {
			pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: data.name}}})
			pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/" + app}}
		}
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "kube-api-access-" + g.suffix(5), VolumeSource: corev1.VolumeSource{
			Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To(int64(3607))}},
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
					Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			}}}})
		g.view.Pods = append(g.view.Pods, pod)
	}
}

func (g *generator) pod(ns, name string, phase corev1.PodPhase) *corev1.Pod {
	meta := g.meta(ns, name)
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: meta,
		Spec: corev1.PodSpec{
			NodeName:           fmt.Sprintf("node-%02d", g.rng.IntN(16)),
			ServiceAccountName: "default",
			RestartPolicy:      corev1.RestartPolicyAlways,
		},
		Status: corev1.PodStatus{Phase: phase},
	}
	if phase != corev1.PodPending {
		pod.Status.PodIP = fmt.Sprintf("10.52.%d.%d", g.rng.IntN(256), 1+g.rng.IntN(254))
		pod.Status.HostIP = fmt.Sprintf("192.168.10.%d", 11+g.rng.IntN(16))
		pod.Status.StartTime = &meta.CreationTimestamp
	}
	return pod
}

func emptyDir(name string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
}
