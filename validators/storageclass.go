package validators

import (
	"fmt"
	"slices"
	"strings"

	storagev1 "k8s.io/api/storage/v1"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/harvester"
	"github.com/hcistorage/storage-webhook/providers"
)

// Rule IDs of this file.
const (
	RuleStorageClassCloneStrategy = "SC-V1"
	RuleStorageClassInUse         = "SC-V2"
	RuleStorageClassCDISettings   = "SC-V3"
)

// WhenStorageClassCloneStrategy is when SC-V1 can deny: a class created with the
// clone-strategy annotation, or an update that sets or changes it.
var WhenStorageClassCloneStrategy = admit.CELAnd(
	admit.CELHasAnnotation(admit.CELObject, harvester.AnnCDIClassCloneStrategy),
	admit.CELCreate+" || "+admit.CELAnnotationChanged(harvester.AnnCDIClassCloneStrategy),
)

// WhenStorageClassCDISettings is when SC-V3 can deny or warn: every CREATE (its warning is
// about any class), and an update that sets, changes or removes a per-class setting or a
// clone-strategy annotation. The annotations are day-2 settings, edited in Harvester's UI.
var WhenStorageClassCDISettings = admit.CELOr(
	admit.CELCreate,
	admit.CELAnyKey(harvester.ClassCDIKeys, func(k string) string {
		return admit.CELAnd(admit.CELUpdate, admit.CELAnnotationChanged(k))
	}),
)

// StorageClass runs SC-V1 and SC-V3 on CREATE and UPDATE, SC-V2 on DELETE. On UPDATE, SC-V1 checks the
// annotation only when the update sets or changes it: a class admitted before this webhook
// is never blocked by a value it already had.
func StorageClass(env *admit.Env, req *admit.Request) (res admit.Result) {
	switch req.Operation {
	case admit.Create, admit.Update:
		var decoded, oldDecoded admit.StorageClass
		if !res.Decode("StorageClass", req.Object, &decoded) {
			return res
		}
		if req.Operation == admit.Update && !res.Decode("old StorageClass", req.OldObject, &oldDecoded) {
			return res
		}
		sc, old := decoded.Class(), oldDecoded.Class()
		classSettings(env, req, sc, old, &res)
		v, ok := sc.Annotations[harvester.AnnCDIClassCloneStrategy]
		if was, had := old.Annotations[harvester.AnnCDIClassCloneStrategy]; ok && had && was == v {
			return res
		}
		if ok && !slices.Contains(providers.CloneStrategies, v) {
			res.Deny(RuleStorageClassCloneStrategy, "StorageClass %s: annotation %s is %q, which CDI does not know: use one of %s",
				admit.ObjectName(req, sc.Name, sc.GenerateName), harvester.AnnCDIClassCloneStrategy, v, strings.Join(providers.CloneStrategies, ", "))
		}
	case admit.Delete:
		// A class is cluster-scoped, its images are not: the denial gives their number and
		// how to list them, not their names, which the deleter may not be allowed to read.
		images := env.View.ImagesUsingStorageClass(req.Name)
		if len(images) == 0 {
			return res
		}
		res.Deny(RuleStorageClassInUse, "StorageClass %s is the storage class of %d image(s): delete or move those images first (list them: kubectl get virtualmachineimages.harvesterhci.io -A -o jsonpath='{range .items[?(@.spec.targetStorageClassName==%q)]}{.metadata.namespace}/{.metadata.name}{\"\\n\"}{end}')",
			req.Name, len(images), req.Name)
	}
	return res
}

// classSettings runs SC-V3: the per-class CDI settings of SPEC §3 must be valid. On UPDATE an
// annotation is checked only when the update sets or changes it, and the rules between
// two annotations only when it changes one of them, so a class stored before this webhook
// is not blocked by what it already had. The warning about access modes is given when a
// class is created and when an update changes its access-modes annotation.
func classSettings(env *admit.Env, req *admit.Request, sc, old *storagev1.StorageClass, res *admit.Result) {
	name := admit.ObjectName(req, sc.Name, sc.GenerateName)
	create := req.Operation == admit.Create
	changed := func(keys ...string) bool {
		for _, k := range keys {
			v, has := sc.Annotations[k]
			w, had := old.Annotations[k]
			if create || has != had || v != w {
				return true
			}
		}
		return false
	}
	deny := func(key, format string, args ...any) {
		res.Deny(RuleStorageClassCDISettings, "StorageClass %s: annotation %s: %s", name, key, fmt.Sprintf(format, args...))
	}
	set := func(key string) (string, bool) {
		v, ok := sc.Annotations[key]
		return v, ok && changed(key)
	}
	cp, matched := env.ProfileOf(sc)
	if !providers.AcceptsClassSettings(sc) {
		for _, key := range harvester.ClassSettingKeys {
			if _, ok := set(key); ok {
				deny(key, "Longhorn v1 classes (dataEngine: v1) keep images as backing images and take no CDI settings, and Harvester ignores them there: remove the annotation, or set it on a Longhorn v2 (dataEngine: v2) or third-party class")
			}
		}
		return
	}
	if v, ok := set(harvester.AnnClassCloneStrategy); ok {
		if err := providers.ValidCloneStrategy(v); err != nil {
			deny(harvester.AnnClassCloneStrategy, "%v", err)
		}
	}
	if v, ok := set(harvester.AnnClassSnapshotClass); ok {
		// The profile's own snapshot class is what SC-M1 writes to every class of the
		// profile: when it is missing the class is still admitted, with a warning, so that
		// the service never refuses a class for a default it added itself.
		p := cp.Profile
		switch vsc, found := env.View.VolumeSnapshotClass(v); {
		case v == "":
			deny(harvester.AnnClassSnapshotClass, "the value is empty: name a VolumeSnapshotClass of driver %s, or remove the annotation", sc.Provisioner)
		case !found && v == p.SnapshotClass:
			res.Warn(RuleStorageClassCDISettings, "StorageClass %s: annotation %s names VolumeSnapshotClass %q, the default of profile %s, which does not exist yet: create it before CDI clones volumes of this class by snapshot",
				name, harvester.AnnClassSnapshotClass, v, p.Name)
		case !found:
			deny(harvester.AnnClassSnapshotClass, "VolumeSnapshotClass %q does not exist: create it first, or name an existing class of driver %s", v, sc.Provisioner)
		case vsc.Driver != sc.Provisioner:
			res.Warn(RuleStorageClassCDISettings, "StorageClass %s: annotation %s names VolumeSnapshotClass %q of driver %s, but the class's provisioner is %s: CDI cannot take snapshot clones with it",
				name, harvester.AnnClassSnapshotClass, v, vsc.Driver, sc.Provisioner)
		}
	}
	if v, ok := set(harvester.AnnClassAccessModes); ok {
		if _, err := providers.ParseAccessModes(v); err != nil {
			deny(harvester.AnnClassAccessModes, "%v", err)
		}
	}
	if v, ok := set(harvester.AnnClassFilesystemOverhead); ok {
		if err := providers.ValidFilesystemOverhead(v); err != nil {
			deny(harvester.AnnClassFilesystemOverhead, "%v", err)
		}
	}
	if !res.Allowed() || !matched {
		return // the rules below read the settings just refused, or a profile
	}
	settings := cp.Settings()
	h, hasH := sc.Annotations[harvester.AnnClassCloneStrategy]
	c, hasC := sc.Annotations[harvester.AnnCDIClassCloneStrategy]
	if hasH && hasC && h != c && changed(harvester.AnnClassCloneStrategy, harvester.AnnCDIClassCloneStrategy) {
		deny(harvester.AnnClassCloneStrategy, "%q differs from %s %q: give the class one clone strategy, in either annotation or both", h, harvester.AnnCDIClassCloneStrategy, c)
	}
	// A snapshot clone needs a VolumeSnapshotClass of the class's driver: the one the
	// settings name, or one CDI finds itself among the driver's classes.
	if settings.CloneStrategy == "snapshot" && settings.SnapshotClass == "" && len(env.View.VolumeSnapshotClassesOfDriver(sc.Provisioner)) == 0 &&
		changed(harvester.AnnClassCloneStrategy, harvester.AnnCDIClassCloneStrategy, harvester.AnnClassSnapshotClass) {
		deny(harvester.AnnClassSnapshotClass, "clone strategy snapshot needs a VolumeSnapshotClass of driver %s, and neither this annotation nor profile %s names one, nor does the cluster have one CDI could pick: create one and name it here, or choose clone strategy copy or csi-clone", sc.Provisioner, cp.Profile.Name)
	}
	if len(settings.AccessModes) == 0 && providers.CDIAccessModes(sc) == "" && changed(harvester.AnnClassAccessModes) {
		res.Warn(RuleStorageClassCDISettings, "StorageClass %s: CDI has no built-in access modes for provisioner %s, so it cannot size or bind DataVolumes of this class that use spec.storage until annotation %s is set, such as {\"Block\":[\"ReadWriteOnce\"]}",
			name, sc.Provisioner, harvester.AnnClassAccessModes)
	}
}
