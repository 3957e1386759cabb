package validators

import (
	"encoding/json"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/harvester"
	"github.com/hcistorage/storage-webhook/providers"
)

// Rule IDs of this file.
const (
	RuleVolumeSnapshot = "VS-V1"
	RuleVMBackup       = "VMB-V1"
)

// volumeSnapshot is snapshot.storage.k8s.io/v1 VolumeSnapshot, reduced to what VS-V1 reads
// (the external-snapshotter client module is not worth importing for two fields).
type volumeSnapshot struct {
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Source struct {
			PersistentVolumeClaimName *string `json:"persistentVolumeClaimName"`
		} `json:"source"`
		VolumeSnapshotClassName *string `json:"volumeSnapshotClassName"`
	} `json:"spec"`
}

// WhenVolumeSnapshot is when VS-V1 can deny or warn: a snapshot of a PVC (a snapshot of a
// pre-provisioned content has none to check).
var WhenVolumeSnapshot = admit.CELHasField(admit.CELObject, "spec.source.persistentVolumeClaimName")

// VolumeSnapshot runs VS-V1 on a VolumeSnapshot CREATE: the source PVC's profile must allow
// volume snapshots on the Harvester release in force, and from v1.9 the PVC must not be a
// VM's shareable disk. A snapshot of a pre-provisioned content has no source PVC to check.
func VolumeSnapshot(env *admit.Env, req *admit.Request) (res admit.Result) {
	var vs volumeSnapshot
	if req.Operation != admit.Create || !res.Decode("VolumeSnapshot", req.Object, &vs) || vs.Spec.Source.PersistentVolumeClaimName == nil {
		return res
	}
	name := admit.ObjectName(req, vs.Name, vs.GenerateName)
	claim := *vs.Spec.Source.PersistentVolumeClaimName
	if env.Harvester().ShareableDisks {
		// Harvester's volume snapshot webhook (v1.9: 9169e7d1) asks this before anything else.
		for _, vm := range env.View.VirtualMachinesUsingPVC(req.Namespace, claim) {
			if usesAsShareable(vm, claim) {
				res.Deny(RuleVolumeSnapshot, "VolumeSnapshot %s: cannot snapshot PVC %s/%s: it is attached to VM %s/%s as a shareable disk and may be written by multiple VMs concurrently: snapshot it while it is attached to no VM as a shareable disk",
					name, req.Namespace, claim, vm.Namespace, vm.Name)
			}
		}
	}
	pvc, ok := env.View.PVC(req.Namespace, claim)
	if !ok {
		res.Warn(RuleVolumeSnapshot, "VolumeSnapshot %s: source PVC %s/%s does not exist yet, so its storage was not checked", name, req.Namespace, claim)
		return res
	}
	class := ptr.Deref(pvc.Spec.StorageClassName, "")
	cp, ok := env.Profile(class)
	if !ok {
		res.Warn(RuleVolumeSnapshot, "VolumeSnapshot %s: storage class %q of PVC %s/%s is not known, so its storage was not checked", name, class, req.Namespace, claim)
		return res
	}
	if !cp.Profile.VolumeSnapshots {
		res.Deny(RuleVolumeSnapshot, "VolumeSnapshot %s: PVC %s/%s is on storage class %q (%s), which cannot take volume snapshots: back the data up another way, or move it to a class whose engine supports snapshots",
			name, req.Namespace, claim, class, env.ProfileWhy(cp, cp.Profile.FromRelease.VolumeSnapshots))
		return res
	}
	snapshotClass(env, &res, name, claim, ptr.Deref(vs.Spec.VolumeSnapshotClassName, ""), cp)
	return res
}

// snapshotClass checks the VolumeSnapshotClass a snapshot of a PVC of class cp will get:
// the one it names, else the default class of the PVC's driver, as the snapshot controller
// chooses. A class of another driver can never cut the snapshot: deny. A class that does
// not exist yet, or no class to choose, leaves the snapshot pending: warn, and name the
// class's effective snapshot class (its annotation, else its profile's) as the one to use.
func snapshotClass(env *admit.Env, res *admit.Result, name, claim, named string, cp admit.ClassProfile) {
	driver := cp.Class.Provisioner
	suggest := "a VolumeSnapshotClass of driver " + driver
	if s := cp.Settings(); s.SnapshotClass != "" {
		suggest = fmt.Sprintf("%q, the snapshot class of storage class %q (from %s)", s.SnapshotClass, cp.Class.Name, s.From["snapshotClass"])
	}
	if named != "" {
		vsc, ok := env.View.VolumeSnapshotClass(named)
		switch {
		case !ok:
			res.Warn(RuleVolumeSnapshot, "VolumeSnapshot %s: VolumeSnapshotClass %q does not exist, so the snapshot waits until it does: create it, or name %s", name, named, suggest)
		case vsc.Driver != driver:
			res.Deny(RuleVolumeSnapshot, "VolumeSnapshot %s: VolumeSnapshotClass %q is of driver %s, but PVC %s is provisioned by %s (storage class %q), so the snapshot can never be taken: name %s",
				name, named, vsc.Driver, claim, driver, cp.Class.Name, suggest)
		}
		return
	}
	if defaults := env.View.DefaultVolumeSnapshotClasses(driver); len(defaults) != 1 {
		why := "no VolumeSnapshotClass of driver " + driver + " is marked default"
		if len(defaults) > 1 {
			why = fmt.Sprintf("%d VolumeSnapshotClasses of driver %s are marked default (%s)", len(defaults), driver, strings.Join(defaults, ", "))
		}
		res.Warn(RuleVolumeSnapshot, "VolumeSnapshot %s names no spec.volumeSnapshotClassName and %s, so the snapshot controller cannot choose one: set it to %s", name, why, suggest)
	}
}

// virtualMachineBackup is harvesterhci.io/v1beta1 VirtualMachineBackup, reduced to what
// VMB-V1 reads.
type virtualMachineBackup struct {
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Type   string `json:"type"`
		Source struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"source"`
	} `json:"spec"`
	// Status is set at creation only on a backup Harvester recovers from its backup
	// target; its source and volume backups then describe what was backed up.
	Status *struct {
		SourceSpec    *struct{}  `json:"sourceSpec"`
		VolumeBackups []struct{} `json:"volumeBackups"`
	} `json:"status"`
}

// VirtualMachineBackup runs VMB-V1 on a VirtualMachineBackup CREATE, as Harvester's own VM
// backup webhook does on the release in force: on v1.9 no disk of the VM may be shareable;
// each PVC volume's profile must allow the type (backup or snapshot); its provisioner must
// be configured for the type in Harvester's csi-driver-config; and a backup needs a backup
// target. A backup Harvester recovers from its target (it arrives with its status) is
// checked for the backup target only, as Harvester checks it.
func VirtualMachineBackup(env *admit.Env, req *admit.Request) (res admit.Result) {
	var b virtualMachineBackup
	if req.Operation != admit.Create || !res.Decode("VirtualMachineBackup", req.Object, &b) {
		return res
	}
	name := admit.ObjectName(req, b.Name, b.GenerateName)
	kind := b.Spec.Type
	if kind == "" {
		kind = harvester.BackupTypeBackup
	}
	if kind != harvester.BackupTypeBackup && kind != harvester.BackupTypeSnapshot {
		res.Deny(RuleVMBackup, "VirtualMachineBackup %s: spec.type %q must be %q or %q", name, b.Spec.Type, harvester.BackupTypeBackup, harvester.BackupTypeSnapshot)
		return res
	}
	h := env.Harvester()
	recovered := b.Status != nil && b.Status.SourceSpec != nil && b.Status.VolumeBackups != nil
	if !recovered {
		vmBackupVolumes(env, &res, req, name, kind, b.Spec.Source.Name)
	}
	if kind == harvester.BackupTypeBackup && !h.BackupTarget {
		res.Deny(RuleVMBackup, "VirtualMachineBackup %s: a VM backup is written to the backup target, and Harvester's %s setting names none%s: set one (Harvester's UI: Settings, %s), or take a VM snapshot (spec.type: snapshot), which stays in the cluster",
			name, harvester.SettingBackupTarget, problem(h, harvester.SettingBackupTarget), harvester.SettingBackupTarget)
	}
	return res
}

// vmBackupVolumes checks the VM a backup or snapshot takes.
func vmBackupVolumes(env *admit.Env, res *admit.Result, req *admit.Request, name, kind, vmName string) {
	vm, ok := env.View.VirtualMachine(req.Namespace, vmName)
	if !ok {
		res.Warn(RuleVMBackup, "VirtualMachineBackup %s: VM %s/%s is not known yet, so its volumes were not checked", name, req.Namespace, vmName)
		return
	}
	if env.Harvester().ShareableDisks {
		if disks := shareableDisks(vm); len(disks) > 0 {
			res.Deny(RuleVMBackup, "VirtualMachineBackup %s: cannot back up VM %s/%s: disk %s is shareable and may be written by multiple VMs concurrently: detach the shareable disk from the VM first",
				name, vm.Namespace, vm.Name, disks[0])
		}
	}
	var offending []string
	if vm.Spec.Template != nil {
		// Harvester backs up PVC volumes only (volumeToPVCMappings): a DataVolume volume is
		// not part of a VM backup, so it cannot make one fail.
		for _, v := range vm.Spec.Template.Spec.Volumes {
			if v.PersistentVolumeClaim == nil {
				continue
			}
			claim := v.PersistentVolumeClaim.ClaimName
			if class, why := backupRefusal(env, req.Namespace, claim, kind); why != "" {
				offending = append(offending, fmt.Sprintf("volume %q (PVC %s, class %q): %s", v.Name, claim, class, why))
			}
		}
	}
	if len(offending) > 0 {
		res.Deny(RuleVMBackup, "VirtualMachineBackup %s: VM %s/%s cannot be taken as a %s: %s",
			name, req.Namespace, vm.Name, kind, strings.Join(offending, "; "))
	}
}

// backupRefusal says why a PVC (of class) refuses a VM backup or snapshot and what to do
// about it, or "" when it allows it or cannot be known (a PVC or class not in the view):
// its profile's ability, as on Harvester's release (its ability matrix until v1.8, Longhorn
// v2's refusal from v1.9); then csi-driver-config, which must give the PVC's provisioner a
// snapshot class for the type (every release).
func backupRefusal(env *admit.Env, ns, claim, kind string) (class, why string) {
	pvc, ok := env.View.PVC(ns, claim)
	if !ok {
		return "", ""
	}
	class = ptr.Deref(pvc.Spec.StorageClassName, "")
	cp, ok := env.Profile(class)
	if !ok {
		return class, ""
	}
	allowed, fromRelease := cp.Profile.VMBackups, cp.Profile.FromRelease.VMBackups
	if kind == harvester.BackupTypeSnapshot {
		allowed, fromRelease = cp.Profile.VMSnapshots, cp.Profile.FromRelease.VMSnapshots
	}
	if !allowed {
		return class, fmt.Sprintf("%s does not support VM %ss: detach the volume or move it to storage that does", env.ProfileWhy(cp, fromRelease), kind)
	}
	h := env.Harvester()
	provisioner := pvcProvisioner(pvc, cp.Class)
	entry, configured := h.CSIDrivers[provisioner]
	field, have := "volumeSnapshotClassName", entry.VolumeSnapshotClassName
	if kind == harvester.BackupTypeBackup {
		field, have = "backupVolumeSnapshotClassName", entry.BackupVolumeSnapshotClassName
	}
	if have != "" {
		return class, ""
	}
	// The entry to add: the provisioner's, with every class it lacks filled in.
	suggest := suggestedSnapshotClass(env, cp)
	for _, c := range []*string{&entry.VolumeSnapshotClassName, &entry.BackupVolumeSnapshotClassName} {
		if *c == "" {
			*c = suggest
		}
	}
	add, _ := json.Marshal(harvester.CSIDriverConfig{provisioner: entry}) // a map of strings always marshals
	what := "is not configured"
	if configured {
		what = "has no " + field
	}
	return class, fmt.Sprintf("provisioner %s %s in Harvester's %s setting%s: add %s to its value (Harvester's UI: Settings, %s)",
		provisioner, what, harvester.SettingCSIDriverConfig, problem(h, harvester.SettingCSIDriverConfig), add, harvester.SettingCSIDriverConfig)
}

// suggestedSnapshotClass is the VolumeSnapshotClass to name in csi-driver-config for a
// class: its effective snapshot class, else the only VolumeSnapshotClass of its driver,
// else a placeholder that says what to name.
func suggestedSnapshotClass(env *admit.Env, cp admit.ClassProfile) string {
	if s := cp.Settings().SnapshotClass; s != "" {
		return s
	}
	if names := env.View.VolumeSnapshotClassesOfDriver(cp.Class.Provisioner); len(names) == 1 {
		return names[0]
	}
	return "<a VolumeSnapshotClass of driver " + cp.Class.Provisioner + ">"
}

// problem is " (<the Setting's problem>)" when a Setting a denial depends on is not in force
// as written (its value does not parse), else "".
func problem(h *providers.Harvester, setting string) string {
	if p, ok := h.Problems[setting]; ok {
		return " (" + p + ")"
	}
	return ""
}
