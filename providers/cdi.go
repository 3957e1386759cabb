package providers

import storagev1 "k8s.io/api/storage/v1"

//go:generate sh -c "go run ../hack/gencdicaps -version v1.65.0 > cdicapabilities.go"

// noProvisioner is the provisioner of statically provisioned classes (local volumes): CDI
// reads the access modes of the class's PersistentVolumes instead of a table.
const noProvisioner = "kubernetes.io/no-provisioner"

// CDIAccessModes says where CDI gets the access modes of a class's claims when the
// StorageProfile has no claim property sets: "" when it has none, which leaves DataVolumes
// that use spec.storage without access modes (CDI cannot size or bind them). The table is
// generated from CDI's pkg/storagecapabilities (cdicapabilities.go, hack/gencdicaps): CDI's
// main module cannot be a dependency of this one (hack/gencdicaps says why).
func CDIAccessModes(sc *storagev1.StorageClass) string {
	if sc.Provisioner == noProvisioner {
		return "the class's PersistentVolumes"
	}
	byParams, ok := cdiProvisioners[sc.Provisioner]
	switch {
	case !ok:
		return ""
	case byParams:
		return "CDI " + cdiCapabilitiesVersion + "'s built-in capabilities, chosen by the class's parameters"
	default:
		return "CDI " + cdiCapabilitiesVersion + "'s built-in capabilities"
	}
}
