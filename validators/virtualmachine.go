package validators

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/harvester"
	"github.com/hcistorage/storage-webhook/providers"
)

// Rule IDs of this file.
const (
	RuleVMDiskSize       = "VM-V1"
	RuleVMGoldenVolumes  = "VM-V2"
	RuleVMShareableDisks = "VM-V3"
	RuleVMImageClass     = "VM-V4"
)

// VirtualMachine runs VM-V1..VM-V4 on a VirtualMachine CREATE or UPDATE (of the VM or of
// its status subresource, through which hotplug requests arrive). A VM being deleted is not
// checked. On UPDATE only what the update adds or changes is checked, so a VM admitted
// earlier (or created before this webhook) is never blocked by disks it already had.
func VirtualMachine(env *admit.Env, req *admit.Request) (res admit.Result) {
	var vm, old virtualMachine
	if !res.Decode("VirtualMachine", req.Object, &vm) {
		return res
	}
	if vm.DeletionTimestamp != nil {
		return res
	}
	if req.Operation == admit.Update && !res.Decode("old VirtualMachine", req.OldObject, &old) {
		return res
	}
	name := admit.ObjectName(req, vm.Name, vm.GenerateName)
	ns := req.Namespace
	vmDiskSizes(env, &res, req, name, &vm, &old)
	if vm.Labels[harvester.LabelImported] != "true" {
		vmGoldenVolumes(env, &res, name, ns, &vm, &old)
	}
	if req.SubResource == "" {
		vmShareableDisks(env, &res, req, name, &vm, &old)
	}
	return res
}

// The When conditions of VM-V1 and VM-V2 let through only a VM that is not being deleted
// and whose create or update brings what the rule reads: a changed volumeClaimTemplates
// annotation, changed dataVolumeTemplates among which one clones a PVC, changed volumes
// among which one is a PVC or DataVolume, changed hotplug requests among which one adds a
// PVC or DataVolume. KubeVirt's status updates, starts and stops (runStrategy, state change
// requests), migrations and finalizer updates change none of these and never reach the
// service. Lists are compared whole (cheap for the API server, and a superset of what the
// rules check: they look at what was added or changed).
var (
	WhenVMDiskSize = admit.CELAnd(notDeleting, admit.CELOr(
		admit.CELAnnotation(admit.CELObject, harvester.AnnVolumeClaimTemplates)+" != "+
			admit.OldOr(admit.CELAnnotation(admit.CELOld, harvester.AnnVolumeClaimTemplates), "''"),
		changedWith("spec.dataVolumeTemplates", "x.?spec.?source.?pvc.hasValue()"),
	))
	// WhenVMShareableDisks: VM-V3 reads the disks and the PVC volumes of a VM with a
	// shareable disk, on every release (the rule itself reads the release in force).
	WhenVMShareableDisks = admit.CELAnd(notDeleting,
		admit.CELField(admit.CELObject, "spec.template.spec.domain.devices.disks", "[]")+".exists(x, x.?shareable.orValue(false))",
		admit.CELOr(admit.CELCreate,
			admit.CELFieldChanged("spec.template.spec.domain.devices.disks", "[]"),
			admit.CELFieldChanged("spec.template.spec.volumes", "[]")))
	WhenVMGoldenVolumes = admit.CELAnd(notDeleting,
		admit.CELLabel(admit.CELObject, harvester.LabelImported)+" != 'true'",
		admit.CELOr(
			changedWith("spec.template.spec.volumes", "has(x.persistentVolumeClaim) || has(x.dataVolume)"),
			changedWith("status.volumeRequests", "x.?addVolumeOptions.?volumeSource.?persistentVolumeClaim.hasValue() || x.?addVolumeOptions.?volumeSource.?dataVolume.hasValue()"),
		))
	notDeleting = "!has(" + admit.CELObject + ".metadata.deletionTimestamp)"
)

// changedWith is CEL for: the list at path differs from the old object's (or there is no
// old object) and one of its items x satisfies item.
func changedWith(path, item string) string {
	list := admit.CELField(admit.CELObject, path, "[]")
	return admit.CELAnd(list+".exists(x, "+item+")",
		admit.CELCreate+" || "+admit.CELFieldChanged(path, "[]"))
}

// virtualMachine is a KubeVirt VirtualMachine reduced to what VM-V1 and VM-V2 read.
// Decoding the whole kubevirt type (domain, devices, resources, ...) costs several times as
// much, and would deny a VM over a field no rule reads; the API server's schema checks those.
// Field names and shapes are KubeVirt's (kubevirt.io/api/core/v1: Volume,
// DataVolumeTemplateSpec, VirtualMachineVolumeRequest).
type virtualMachine struct {
	admit.ObjectMeta `json:"metadata"`
	Spec             struct {
		Template struct { // a value, not a pointer: absent reads as no volumes
			Spec struct {
				Domain struct {
					Devices struct {
						// Disks are decoded by VM-V3 alone, and only when they may hold
						// a shareable disk (vmDisks): most VM reviews never pay for them.
						Disks json.RawMessage `json:"disks"`
					} `json:"devices"`
				} `json:"domain"`
				Volumes []struct {
					Name string `json:"name"`
					ClaimSource
				} `json:"volumes"`
			} `json:"spec"`
		} `json:"template"`
		DataVolumeTemplates []admit.Object[admit.DataVolumeSpec] `json:"dataVolumeTemplates"`
	} `json:"spec"`
	Status struct {
		VolumeRequests []struct {
			AddVolumeOptions *struct {
				Name         string       `json:"name"`
				VolumeSource *ClaimSource `json:"volumeSource"`
			} `json:"addVolumeOptions"`
		} `json:"volumeRequests"`
	} `json:"status"`
}

// ClaimSource is the part of a KubeVirt volume source (a VM volume or a hotplug request's
// source) that names a PVC: directly, or as the PVC of a DataVolume. It is exported only
// because it is embedded: encoding/json/v2 cannot set the fields of an embedded unexported
// struct (FuzzRulesDecode found that as a panic on an embedded metadata type).
type ClaimSource struct {
	PersistentVolumeClaim *struct {
		ClaimName string `json:"claimName"`
	} `json:"persistentVolumeClaim"`
	DataVolume *struct {
		Name string `json:"name"`
	} `json:"dataVolume"`
}

// vmDiskSizes is VM-V4, then VM-V1 (and IMG-V6 for images of other namespaces).
func vmDiskSizes(env *admit.Env, res *admit.Result, req *admit.Request, name string, vm, old *virtualMachine) {
	var templates, oldTemplates []claimTemplate
	// An annotation the update leaves as it was is not re-checked, even if it never
	// parsed: only the VM's author can fix it, and status updates must still go through.
	if vm.Annotations[harvester.AnnVolumeClaimTemplates] != old.Annotations[harvester.AnnVolumeClaimTemplates] {
		var ok bool
		if templates, ok = volumeClaimTemplates(res, name, vm); !ok {
			return
		}
		oldTemplates, _ = volumeClaimTemplates(&admit.Result{}, name, old)
	}
	for _, pvc := range templates {
		if slices.ContainsFunc(oldTemplates, func(o claimTemplate) bool { return sameDisk(&o, &pvc) }) {
			continue
		}
		disk := func() string { return fmt.Sprintf("VM %s disk %q", name, pvc.Metadata.Name) }
		ref, hasRef := pvc.imageRef()
		ref, viaClass, ok := checkClassImage(env, res, req, RuleVMImageClass, disk, ref, hasRef, pvc.Spec.StorageClassName)
		if ok && ref != "" {
			checkImageSize(env, res, req, RuleVMDiskSize, disk, ref, viaClass, pvc.Spec.Resources.Requests.Storage)
		}
	}
	for _, dvt := range vm.Spec.DataVolumeTemplates {
		if slices.ContainsFunc(old.Spec.DataVolumeTemplates, func(o admit.Object[admit.DataVolumeSpec]) bool {
			return o.Name == dvt.Name && sameClone(o.Spec, dvt.Spec)
		}) {
			continue
		}
		disk := func() string { return fmt.Sprintf("VM %s dataVolumeTemplate %q", name, dvt.Name) }
		checkGoldenClone(env, res, req, RuleVMDiskSize, disk, req.Namespace, &dvt.Spec)
	}
}

// claimTemplate is one PVC of the volumeClaimTemplates annotation, reduced to what VM-V1
// reads: its name, its image annotation and its storage request. Harvester's VM webhook
// parses the rest. Decoding whole PersistentVolumeClaims took 18 % of the VM review's CPU,
// these structs 9 % (BENCHMARKS.md §7). The annotation's key is written out in the tag,
// which cannot name a constant; TestAnnotationTagsAreTheKeys checks it against harvester.AnnImageID.
type claimTemplate struct {
	Metadata struct {
		Name        string `json:"name"`
		Annotations struct {
			ImageID *string `json:"harvesterhci.io/imageId"`
		} `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		StorageClassName string `json:"storageClassName"` // "" when absent
		Resources        struct {
			Requests struct {
				Storage resource.Quantity `json:"storage"` // absent reads as 0, as from a map
			} `json:"requests"`
		} `json:"resources"`
	} `json:"spec"`
}

// imageRef is the template's image reference; ok is false when it has none.
func (t *claimTemplate) imageRef() (ref string, ok bool) {
	if t.Metadata.Annotations.ImageID == nil {
		return "", false
	}
	return *t.Metadata.Annotations.ImageID, true
}

// volumeClaimTemplates decodes the harvesterhci.io/volumeClaimTemplates annotation (a JSON
// array of PVCs). Absent is empty; a value that does not parse is denied under VM-V1.
func volumeClaimTemplates(res *admit.Result, name string, vm *virtualMachine) ([]claimTemplate, bool) {
	raw, ok := vm.Annotations[harvester.AnnVolumeClaimTemplates]
	if !ok || strings.TrimSpace(raw) == "" {
		return nil, true
	}
	var pvcs []claimTemplate
	if err := admit.Decode([]byte(raw), &pvcs); err != nil {
		res.Deny(RuleVMDiskSize, "VM %s: annotation %s is not a JSON array of PersistentVolumeClaims: %v: fix the annotation",
			name, harvester.AnnVolumeClaimTemplates, err)
		return nil, false
	}
	return pvcs, true
}

// sameDisk: the entry's name, image reference, class and size are as they were.
func sameDisk(a, b *claimTemplate) bool {
	qa, qb := a.Spec.Resources.Requests.Storage, b.Spec.Resources.Requests.Storage
	ra, _ := a.imageRef()
	rb, _ := b.imageRef()
	return a.Metadata.Name == b.Metadata.Name && ra == rb && qa.Cmp(qb) == 0 &&
		a.Spec.StorageClassName == b.Spec.StorageClassName
}

func sameClone(a, b admit.DataVolumeSpec) bool {
	qa, oka := cloneRequest(&a)
	qb, okb := cloneRequest(&b)
	return oka == okb && qa.Cmp(qb) == 0 && a.Source != nil && b.Source != nil &&
		a.Source.PVC != nil && b.Source.PVC != nil && *a.Source.PVC == *b.Source.PVC
}

// vmGoldenVolumes is VM-V2: golden PVCs are neither VM volumes nor hotplugged.
func vmGoldenVolumes(env *admit.Env, res *admit.Result, name, ns string, vm, old *virtualMachine) {
	before := claimUses(old)
	for _, use := range claimUses(vm) {
		if slices.Contains(before, use) {
			continue
		}
		if img, golden := env.GoldenImage(ns, use.claim, nil); golden {
			res.Deny(RuleVMGoldenVolumes, "VM %s: %s PVC %s/%s, the golden PVC of image %s/%s: a VM cannot use an image's golden PVC; give it a disk of its own cloned from the image (a volumeClaimTemplate with %s: %s/%s)",
				name, use.how(), ns, use.claim, img.Namespace, img.Name, harvester.AnnImageID, img.Namespace, img.Name)
		}
	}
}

// claimUse is one way a VM uses a PVC: a volume or a hotplug request (hotplug) named name,
// directly or as the PVC of a DataVolume (dataVolume).
type claimUse struct {
	claim, name         string
	hotplug, dataVolume bool
}

// how says in a denial how the VM uses the claim; it is written only for a denial.
func (u claimUse) how() string {
	s := fmt.Sprintf("volume %q mounts", u.name)
	if u.hotplug {
		s = fmt.Sprintf("hotplug request %q adds", u.name)
	}
	if u.dataVolume {
		s += " (as DataVolume)"
	}
	return s
}

func claimUses(vm *virtualMachine) []claimUse {
	var out []claimUse
	// A DataVolume volume mounts the PVC of the DataVolume's name (the golden image's own
	// DataVolume is named like its PVC), so it counts too.
	for _, v := range vm.Spec.Template.Spec.Volumes {
		switch {
		case v.PersistentVolumeClaim != nil:
			out = append(out, claimUse{claim: v.PersistentVolumeClaim.ClaimName, name: v.Name})
		case v.DataVolume != nil:
			out = append(out, claimUse{claim: v.DataVolume.Name, name: v.Name, dataVolume: true})
		}
	}
	for _, r := range vm.Status.VolumeRequests {
		o := r.AddVolumeOptions
		if o == nil || o.VolumeSource == nil {
			continue
		}
		switch src := o.VolumeSource; {
		case src.PersistentVolumeClaim != nil:
			out = append(out, claimUse{claim: src.PersistentVolumeClaim.ClaimName, name: o.Name, hotplug: true})
		case src.DataVolume != nil:
			out = append(out, claimUse{claim: src.DataVolume.Name, name: o.Name, hotplug: true, dataVolume: true})
		}
	}
	return out
}

// vmDisk is what VM-V3 reads of a disk (kubevirt.io/api/core/v1 Disk).
type vmDisk struct {
	Name      string `json:"name"`
	Shareable *bool  `json:"shareable"`
	BootOrder *uint  `json:"bootOrder"`
	Cache     string `json:"cache"`
}

// vmShareableDisks is VM-V3, on the releases whose Behaviour has ShareableDisks (v1.9,
// Harvester's checkShareableVolumes, 9169e7d1): a shareable disk is not the boot disk, has
// cache none (or unset), is backed by a PVC volume, and that PVC exists, is ReadWriteMany,
// volumeMode Block, and not Longhorn's. Harvester stops at the first problem; this reports
// the first problem of each shareable disk. An update that changes neither the disks nor
// the volumes is not checked (a VM stored before has what it had).
func vmShareableDisks(env *admit.Env, res *admit.Result, req *admit.Request, name string, vm, old *virtualMachine) {
	if !env.Harvester().ShareableDisks || !mayShare(vm.Spec.Template.Spec.Domain.Devices.Disks) {
		return
	}
	disks, claims, ok := vm.shareableView(res, "VirtualMachine")
	if !ok {
		return
	}
	if req.Operation == admit.Update {
		oldDisks, oldClaims, ok := old.shareableView(&admit.Result{}, "old VirtualMachine")
		if ok && slices.Equal(disks, oldDisks) && maps.Equal(claims, oldClaims) {
			return
		}
	}
	anyBootOrder := slices.ContainsFunc(disks, func(d diskView) bool { return d.bootOrder != 0 })
	for i, d := range disks {
		if !d.shareable {
			continue
		}
		claim, backed := claims[d.name]
		why := ""
		switch {
		case d.bootOrder == 1 || !anyBootOrder && i == 0: // without boot orders the first disk boots
			why = "a shareable disk cannot be used as the boot disk: boot from another disk (bootOrder: 1 on it)"
		case d.cache != "" && d.cache != "none":
			why = fmt.Sprintf("a shareable disk requires cache mode none, got %s: set cache: none or leave it unset", d.cache)
		case !backed:
			why = "a shareable disk must be backed by a persistent volume claim: give it a persistentVolumeClaim volume of the same name"
		}
		if why != "" {
			res.Deny(RuleVMShareableDisks, "VM %s: disk %s cannot be shareable: %s", name, d.name, why)
			continue
		}
		if why := shareableVolumeRefusal(env, req.Namespace, claim); why != "" {
			res.Deny(RuleVMShareableDisks, "VM %s: disk %s: %s", name, d.name, why)
		}
	}
}

// diskView is a disk as VM-V3 compares it (bootOrder 0: none; KubeVirt's start at 1);
// claims maps a PVC volume's name to its claim.
type diskView struct {
	name      string
	shareable bool
	bootOrder uint
	cache     string
}

// mayShare reports whether a VM's raw disk list may hold a shareable disk: it names the
// field, or holds an escape that could spell it.
func mayShare(disks json.RawMessage) bool {
	return bytes.Contains(disks, []byte("shareable")) || bytes.IndexByte(disks, '\\') >= 0
}

// shareableView decodes the VM's disks (a DECODE denial in res when they do not parse) and
// its PVC volumes.
func (vm *virtualMachine) shareableView(res *admit.Result, what string) ([]diskView, map[string]string, bool) {
	var decoded []vmDisk
	if raw := vm.Spec.Template.Spec.Domain.Devices.Disks; len(raw) > 0 && !res.Decode(what+" spec.template.spec.domain.devices.disks", raw, &decoded) {
		return nil, nil, false
	}
	disks := make([]diskView, len(decoded))
	for i, d := range decoded {
		disks[i] = diskView{name: d.Name, shareable: ptr.Deref(d.Shareable, false), bootOrder: ptr.Deref(d.BootOrder, 0), cache: d.Cache}
	}
	claims := map[string]string{}
	for _, v := range vm.Spec.Template.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			claims[v.Name] = v.PersistentVolumeClaim.ClaimName
		}
	}
	return disks, claims, true
}

// shareableVolumeRefusal says why a PVC cannot back a shareable disk, in Harvester's words
// (CheckShareableVolume), or "" when it can. Unlike the size rules, a PVC that does not
// exist yet is refused: a shareable disk shares an existing volume.
func shareableVolumeRefusal(env *admit.Env, ns, claim string) string {
	pvc, ok := env.View.PVC(ns, claim)
	if !ok {
		return fmt.Sprintf("PVC %s/%s does not exist: a shareable disk requires an existing volume", ns, claim)
	}
	class, _ := env.View.StorageClass(ptr.Deref(pvc.Spec.StorageClassName, ""))
	if pvcProvisioner(pvc, class) == providers.LonghornProvisioner || !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteMany) {
		return fmt.Sprintf("PVC %s/%s cannot back a shareable disk: a ReadWriteMany volume from a provisioner other than Longhorn is required", ns, claim)
	}
	if ptr.Deref(pvc.Spec.VolumeMode, "") != corev1.PersistentVolumeBlock {
		return fmt.Sprintf("PVC %s/%s cannot back a shareable disk: volumeMode must be Block", ns, claim)
	}
	return ""
}

// pvcProvisioner is the CSI driver of a PVC as Harvester reads it (GetProvisionedPVCProvisioner):
// the provisioner annotation the PV controller writes (beta key first), else the class's
// provisioner; "" when neither is known.
func pvcProvisioner(pvc *corev1.PersistentVolumeClaim, class *storagev1.StorageClass) string {
	p, ok := pvc.Annotations[harvester.AnnBetaStorageProvisioner]
	if !ok {
		p = pvc.Annotations[harvester.AnnStorageProvisioner]
	}
	if p == "" && class != nil {
		p = class.Provisioner
	}
	return p
}

// shareableDisks names a stored VM's shareable disks, in order (Harvester's HasShareableDisk
// takes the first).
func shareableDisks(vm *kubevirtv1.VirtualMachine) []string {
	var out []string
	if vm.Spec.Template != nil {
		for _, d := range vm.Spec.Template.Spec.Domain.Devices.Disks {
			if ptr.Deref(d.Shareable, false) {
				out = append(out, d.Name)
			}
		}
	}
	return out
}

// usesAsShareable reports whether a stored VM attaches claim through a shareable disk
// (Harvester's VMUsesPVCAsShareable: a PVC volume whose disk of the same name is shareable).
func usesAsShareable(vm *kubevirtv1.VirtualMachine, claim string) bool {
	if vm.Spec.Template == nil {
		return false
	}
	shareable := shareableDisks(vm)
	return slices.ContainsFunc(vm.Spec.Template.Spec.Volumes, func(v kubevirtv1.Volume) bool {
		return v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim && slices.Contains(shareable, v.Name)
	})
}
