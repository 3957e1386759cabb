package mutators

import (
	"reflect"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/hcistorage/storage-webhook/admit"
)

// RuleStorageProfile is SP-M1: CDI's StorageProfile gets the clone strategy and snapshot
// class of its class's provider profile.
const RuleStorageProfile = "SP-M1"

// storageProfileRequest decodes what SP-M1 reads; spec is a pointer to know whether /spec exists.
type storageProfileRequest struct {
	Metadata metav1.ObjectMeta `json:"metadata"`
	Spec     *struct {
		CloneStrategy *string `json:"cloneStrategy"`
		SnapshotClass *string `json:"snapshotClass"`
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
	),
)

// StorageProfile runs SP-M1 on a StorageProfile CREATE, or an UPDATE that changes the spec.
// A value an administrator set is never overwritten; only unset (absent or empty) fields
// are filled.
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
	if !ok || (cp.Profile.CloneStrategy == "" && cp.Profile.SnapshotClass == "") {
		return res
	}
	var clone, snap string
	if sp.Spec == nil {
		res.AddObject(RuleStorageProfile, map[string]any{}, "spec")
	} else {
		clone, snap = ptr.Deref(sp.Spec.CloneStrategy, ""), ptr.Deref(sp.Spec.SnapshotClass, "")
	}
	if clone == "" && cp.Profile.CloneStrategy != "" {
		res.SetField(RuleStorageProfile, clone, cp.Profile.CloneStrategy, "spec", "cloneStrategy")
	}
	if snap == "" && cp.Profile.SnapshotClass != "" {
		res.SetField(RuleStorageProfile, snap, cp.Profile.SnapshotClass, "spec", "snapshotClass")
	}
	return res
}
