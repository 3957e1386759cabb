package mutators

import (
	"maps"
	"slices"

	storagev1 "k8s.io/api/storage/v1"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/harvester"
)

// RuleStorageClassDefaults is SC-M1: a new class gets its profile's clone strategy
// annotation and default parameters, where the creator did not set them.
const RuleStorageClassDefaults = "SC-M1"

// WhenStorageClassDefaults is when SC-M1 can act: every CREATE (the providers table, which
// says what a class gets, is the service's); an update that drops the clone-strategy
// annotation or changes the parameters (immutable: only a re-applied manifest without the
// defaults SC-M1 added does, and the API server would refuse it).
var WhenStorageClassDefaults = admit.CELOr(
	admit.CELCreate,
	admit.CELAnd(admit.CELHasAnnotation(admit.CELOld, harvester.AnnCDIClassCloneStrategy),
		"!"+admit.CELHasAnnotation(admit.CELObject, harvester.AnnCDIClassCloneStrategy)),
	admit.CELAnd(admit.CELUpdate, admit.CELFieldChanged("parameters", "{}")),
)

// StorageClass runs SC-M1 on a StorageClass CREATE, and on an UPDATE that drops what it
// added (SPEC §5.8): the clone-strategy annotation, or a default parameter of the class's
// profile, gets its stored value again. Parameters are immutable after creation, so a
// re-applied manifest without the defaults would otherwise be refused by the API server.
func StorageClass(env *admit.Env, req *admit.Request) (res admit.Result) {
	var sc, old storagev1.StorageClass
	if !res.Decode("StorageClass", req.Object, &sc) {
		return res
	}
	update := req.Operation == admit.Update
	if update && !res.Decode("old StorageClass", req.OldObject, &old) {
		return res
	}
	matched := &sc
	if update {
		matched = &old // the class as created: its parameters decide its profile
	}
	p, ok := env.Providers.Table().Match(matched)
	if !ok {
		return res
	}
	missing := map[string]string{}
	if update {
		res.RestoreAnnotations(RuleStorageClassDefaults, sc.Annotations, old.Annotations, harvester.AnnCDIClassCloneStrategy)
		for k := range p.DefaultParameters {
			if v, had := old.Parameters[k]; had {
				if _, set := sc.Parameters[k]; !set {
					missing[k] = v
				}
			}
		}
	} else {
		if _, set := sc.Annotations[harvester.AnnCDIClassCloneStrategy]; !set && p.CloneStrategy != "" {
			res.SetAnnotation(RuleStorageClassDefaults, sc.Annotations, harvester.AnnCDIClassCloneStrategy, p.CloneStrategy)
		}
		for k, v := range p.DefaultParameters {
			if _, set := sc.Parameters[k]; !set {
				missing[k] = v
			}
		}
	}
	switch {
	case len(missing) == 0:
	case sc.Parameters == nil:
		res.AddObject(RuleStorageClassDefaults, toAny(missing), "parameters")
	default:
		for _, k := range slices.Sorted(maps.Keys(missing)) {
			res.SetField(RuleStorageClassDefaults, "", missing[k], "parameters", k)
		}
	}
	return res
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
