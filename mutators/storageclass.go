package mutators

import (
	"maps"
	"slices"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/harvester"
	"github.com/hcistorage/storage-webhook/providers"
)

// RuleStorageClassDefaults is SC-M1: a new class gets its effective CDI settings written
// out as annotations, and its profile's default parameters, where the creator did not set
// them.
const RuleStorageClassDefaults = "SC-M1"

// classSettingKeys are the annotations SC-M1 writes: Harvester's three StorageProfile
// settings and CDI's own clone strategy.
var classSettingKeys = []string{harvester.AnnClassCloneStrategy, harvester.AnnClassSnapshotClass, harvester.AnnClassAccessModes, harvester.AnnCDIClassCloneStrategy}

// WhenStorageClassDefaults is when SC-M1 can act: every CREATE (the providers table, which
// says what a class gets, is the service's); an update that drops an annotation SC-M1
// writes, or changes one of the two clone-strategy annotations (the other follows); and an
// update that changes the parameters (immutable: only a re-applied manifest without the
// defaults SC-M1 added does, and the API server would refuse it).
var WhenStorageClassDefaults = admit.CELOr(
	admit.CELCreate,
	admit.CELAnyKey(classSettingKeys, dropped),
	admit.CELAnd(admit.CELUpdate, admit.CELOr(
		admit.CELAnnotationChanged(harvester.AnnClassCloneStrategy),
		admit.CELAnnotationChanged(harvester.AnnCDIClassCloneStrategy),
		admit.CELFieldChanged("parameters", "{}"))),
)

// StorageClass runs SC-M1.
//
// On CREATE it writes the class's effective clone strategy, snapshot class and access modes
// as Harvester's annotations, and the clone strategy as CDI's cdi.kubevirt.io/clone-strategy
// too, where absent; and adds each default parameter of the profile that is absent. Both
// clone-strategy keys are written, with one value, because two readers need them: Harvester's
// UI shows and its controller copies Harvester's keys into the StorageProfile, and a cluster
// without Harvester has only CDI, which reads its own key (and a StorageProfile that SP-M1
// filled from Harvester's). Harvester's keys are not written on a Longhorn v1 class, which
// Harvester's controller skips and SC-V3 keeps them off.
//
// On UPDATE (SPEC §5.8) an annotation of those four that the update drops gets the class's
// effective value again, as Harvester's own mutator does, so a re-applied manifest without
// them changes nothing; a setting with no value besides the dropped annotation (no profile
// default) stays removed, which is how an administrator removes an override. When an update
// changes one clone-strategy key and leaves the other, the other follows, so Harvester's
// UI, which edits only its own key, and a CDI user, who edits only CDI's, both keep the
// two equal. A default parameter that the update drops gets its stored value again.
func StorageClass(env *admit.Env, req *admit.Request) (res admit.Result) {
	var decoded, oldDecoded admit.StorageClass
	if !res.Decode("StorageClass", req.Object, &decoded) {
		return res
	}
	update := req.Operation == admit.Update
	if update && !res.Decode("old StorageClass", req.OldObject, &oldDecoded) {
		return res
	}
	sc, old := decoded.Class(), oldDecoded.Class()
	matched := sc
	if update {
		matched = old // the class as created: its parameters decide its profile
	}
	p, ok := env.Providers.Table().Match(matched)
	if !ok {
		return res
	}
	settings, _ := providers.Effective(sc, p)
	want := map[string]string{harvester.AnnCDIClassCloneStrategy: settings.CloneStrategy}
	if providers.AcceptsClassSettings(sc) {
		want[harvester.AnnClassCloneStrategy] = settings.CloneStrategy
		want[harvester.AnnClassSnapshotClass] = settings.SnapshotClass
		if len(settings.AccessModes) > 0 {
			want[harvester.AnnClassAccessModes] = settings.AccessModes.String()
		}
	}
	missing := map[string]string{}
	for _, key := range classSettingKeys {
		_, has := sc.Annotations[key]
		_, had := old.Annotations[key]
		if !has && want[key] != "" && (!update || had) {
			res.SetAnnotation(RuleStorageClassDefaults, sc.Annotations, key, want[key])
		}
	}
	if update {
		followCloneStrategy(&res, sc.Annotations, old.Annotations)
		for k := range p.DefaultParameters {
			if v, had := old.Parameters[k]; had {
				if _, set := sc.Parameters[k]; !set {
					missing[k] = v
				}
			}
		}
	} else {
		for k, v := range p.DefaultParameters {
			if _, set := sc.Parameters[k]; !set {
				missing[k] = v
			}
		}
	}
	switch {
	case len(missing) == 0:
	case sc.Parameters == nil:
		res.AddMember(RuleStorageClassDefaults, toAny(missing), "parameters")
	default:
		for _, k := range slices.Sorted(maps.Keys(missing)) {
			res.SetField(RuleStorageClassDefaults, "", missing[k], "parameters", k)
		}
	}
	return res
}

// followCloneStrategy makes the clone-strategy key an update left alone follow the one it
// changed. When it changes both to different values, SC-V3 refuses the update.
func followCloneStrategy(res *admit.Result, ann, old map[string]string) {
	pair := [2]string{harvester.AnnClassCloneStrategy, harvester.AnnCDIClassCloneStrategy}
	for i, changed := range pair {
		other := pair[1-i]
		v, has := ann[changed]
		w, hasOther := ann[other]
		if has && v != old[changed] && hasOther && w == old[other] && w != v {
			res.SetAnnotation(RuleStorageClassDefaults, ann, other, v)
		}
	}
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
