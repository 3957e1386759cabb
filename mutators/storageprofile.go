package mutators

import (
	"reflect"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/hcistorage/storage-webhook/admit"
)

// RuleStorageProfile is SP-M1: CDI's StorageProfile gets the clone strategy, snapshot class
// and claim property sets of its class's effective settings where it has none.
const RuleStorageProfile = "SP-M1"

// storageProfileRequest decodes what SP-M1 reads; spec is a pointer to know whether /spec exists.
type storageProfileRequest struct {
	Metadata metav1.ObjectMeta `json:"metadata"`
	Spec     *struct {
		CloneStrategy     *string `json:"cloneStrategy"`
		SnapshotClass     *string `json:"snapshotClass"`
		ClaimPropertySets []any   `json:"claimPropertySets"`
	} `json:"spec"`
}

// WhenStorageProfile is when SP-M1 acts: a field it fills is unset in a new profile, or in
// an update that changes the spec (as Harvester's storage class controller does when it
// clears a field). CDI writes a profile's status through the status subresource, which
// this webhook does not register, and its label updates leave the spec as it was: neither
// reaches the service. A profile that was stored with unset fields before this webhook
// was installed is filled at its next spec change (storage-webhook audit reports it).
var WhenStorageProfile = admit.CELAnd(
	admit.CELCreate+" || "+admit.CELFieldChanged("spec", "{}"),
	admit.CELOr(
		admit.CELField(admit.CELObject, "spec.cloneStrategy", "''")+" == ''",
		admit.CELField(admit.CELObject, "spec.snapshotClass", "''")+" == ''",
		admit.CELField(admit.CELObject, "spec.claimPropertySets", "[]")+".size() == 0",
	),
)

// StorageProfile runs SP-M1 on a StorageProfile CREATE, or an UPDATE that changes the spec.
// Only unset (absent, empty) fields are filled, from the effective settings of the class
// of the same name, so a value an administrator or a controller set is never overwritten.
//
// It never fights a controller. Harvester's storage class controller sets these fields
// from the class's annotations and clears one whose annotation is absent; SC-M1 writes an
// annotation for every value a profile gives, so the two agree and the controller's
// update passes unchanged. Where they would not (a class stored before this webhook, with
// a profile value but no annotation), the clearing update gets the same value back every
// time: the stored profile does not change, so no watch event follows and the controller,
// whose update succeeded, does not retry.
func StorageProfile(env *admit.Env, req *admit.Request) (res admit.Result) {
	var sp storageProfileRequest
	if !res.Decode("StorageProfile", req.Object, &sp) {
		return res
	}
	if req.Operation == admit.Update {
		var spec, oldSpec struct {
			Spec any `json:"spec"`
		}
		if !res.Decode("StorageProfile", req.Object, &spec) || !res.Decode("old StorageProfile", req.OldObject, &oldSpec) {
			return res
		}
		if reflect.DeepEqual(spec.Spec, oldSpec.Spec) {
			return res
		}
	}
	name := sp.Metadata.Name
	if name == "" {
		name = req.Name
	}
	cp, ok := env.Profile(name) // a StorageProfile is named like its StorageClass
	if !ok {
		return res
	}
	want := cp.Settings()
	if want.CloneStrategy == "" && want.SnapshotClass == "" && len(want.AccessModes) == 0 {
		return res
	}
	var clone, snap string
	var sets []any
	if sp.Spec == nil {
		res.AddMember(RuleStorageProfile, map[string]any{}, "spec")
	} else {
		clone, snap, sets = ptr.Deref(sp.Spec.CloneStrategy, ""), ptr.Deref(sp.Spec.SnapshotClass, ""), sp.Spec.ClaimPropertySets
	}
	if clone == "" && want.CloneStrategy != "" {
		res.SetField(RuleStorageProfile, clone, want.CloneStrategy, "spec", "cloneStrategy")
	}
	if snap == "" && want.SnapshotClass != "" {
		res.SetField(RuleStorageProfile, snap, want.SnapshotClass, "spec", "snapshotClass")
	}
	if len(sets) == 0 && len(want.AccessModes) > 0 {
		res.AddMember(RuleStorageProfile, want.AccessModes.ClaimPropertySets(), "spec", "claimPropertySets")
	}
	return res
}
