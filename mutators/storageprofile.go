package mutators

import (
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

// StorageProfile runs SP-M1 on a StorageProfile CREATE or UPDATE. A value an administrator
// set is never overwritten; only unset (absent or empty) fields are filled.
func StorageProfile(env *admit.Env, req *admit.Request) (res admit.Result) {
	var sp storageProfileRequest
	if !res.Decode("StorageProfile", req.Object, &sp) {
		return res
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
