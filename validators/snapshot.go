package validators

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/harvester"
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
// volume snapshots. A snapshot of a pre-provisioned content has no source PVC to check.
func VolumeSnapshot(env *admit.Env, req *admit.Request) (res admit.Result) {
	var vs volumeSnapshot
	if req.Operation != admit.Create || !res.Decode("VolumeSnapshot", req.Object, &vs) || vs.Spec.Source.PersistentVolumeClaimName == nil {
		return res
	}
	name := admit.ObjectName(req, vs.Name, vs.GenerateName)
	claim := *vs.Spec.Source.PersistentVolumeClaimName
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
		res.Deny(RuleVolumeSnapshot, "VolumeSnapshot %s: PVC %s/%s is on storage class %q (profile %s), which cannot take volume snapshots: back the data up another way, or move it to a class whose engine supports snapshots",
			name, req.Namespace, claim, class, cp.Profile.Name)
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
}

// VirtualMachineBackup runs VMB-V1 on a VirtualMachineBackup CREATE: every PVC volume of the
// VM must be on storage whose profile allows that type (backup or snapshot).
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
	vm, ok := env.View.VirtualMachine(req.Namespace, b.Spec.Source.Name)
	if !ok {
		res.Warn(RuleVMBackup, "VirtualMachineBackup %s: VM %s/%s is not known yet, so its volumes were not checked", name, req.Namespace, b.Spec.Source.Name)
		return res
	}
	var offending []string
	if vm.Spec.Template != nil {
		for _, v := range vm.Spec.Template.Spec.Volumes {
			claim := ""
			switch {
			case v.PersistentVolumeClaim != nil:
				claim = v.PersistentVolumeClaim.ClaimName
			case v.DataVolume != nil:
				claim = v.DataVolume.Name // CDI names a DataVolume's PVC like the DataVolume
			default:
				continue
			}
			if why := backupRefusal(env, req.Namespace, claim, kind); why != "" {
				offending = append(offending, fmt.Sprintf("volume %q (PVC %s, %s)", v.Name, claim, why))
			}
		}
	}
	if len(offending) > 0 {
		res.Deny(RuleVMBackup, "VirtualMachineBackup %s: VM %s/%s cannot be taken as a %s, because the storage of %s does not support VM %ss: detach those volumes or move them to storage that does",
			name, req.Namespace, vm.Name, kind, strings.Join(offending, "; "), kind)
	}
	return res
}

// backupRefusal says why a PVC's storage refuses a backup or snapshot, or "" when it allows
// it or cannot be known (a PVC or class not in the view).
func backupRefusal(env *admit.Env, ns, claim, kind string) string {
	pvc, ok := env.View.PVC(ns, claim)
	if !ok {
		return ""
	}
	class := ptr.Deref(pvc.Spec.StorageClassName, "")
	cp, ok := env.Profile(class)
	if !ok {
		return ""
	}
	allowed := cp.Profile.VMBackups
	if kind == harvester.BackupTypeSnapshot {
		allowed = cp.Profile.VMSnapshots
	}
	if allowed {
		return ""
	}
	return fmt.Sprintf("class %q, profile %s", class, cp.Profile.Name)
}
