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

// StorageClass runs SC-M1 on a StorageClass CREATE. Parameters are immutable after
// creation, so defaults are applied at CREATE only.
func StorageClass(env *admit.Env, req *admit.Request) (res admit.Result) {
	if req.Operation != admit.Create {
		return res
	}
	var sc storagev1.StorageClass
	if !res.Decode("StorageClass", req.Object, &sc) {
		return res
	}
	p, ok := env.Providers.Table().Match(&sc)
	if !ok {
		return res
	}
	if _, set := sc.Annotations[harvester.AnnCDIClassCloneStrategy]; !set && p.CloneStrategy != "" {
		res.SetAnnotation(RuleStorageClassDefaults, sc.Annotations, harvester.AnnCDIClassCloneStrategy, p.CloneStrategy)
	}
	missing := map[string]string{}
	for k, v := range p.DefaultParameters {
		if _, set := sc.Parameters[k]; !set {
			missing[k] = v
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
