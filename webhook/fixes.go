package webhook

// RuleFixes is the "Fix" of docs/rules.md and of `audit` findings: one sentence per rule ID
// (and per answer ID that is not a rule) on what the user does about a denial, warning or
// mutation.
var RuleFixes = map[string]string{
	"IMG-M1": "Name the storage class in the `harvesterhci.io/storageClassName` annotation or in `spec.targetStorageClassName` (one is copied to the other), or mark a StorageClass as the cluster default so images without one get it.",
	"IMG-M2": "Nothing, unless you meant a Longhorn v1 backing image: the class's provider profile decides the backend (the built-in table in the README, then the rows of the `--providers` file), so put the image on a Longhorn v1 class or change the profile.",
	"IMG-V1": "Make the `harvesterhci.io/storageClassName` annotation and `spec.targetStorageClassName` name the same class, or set only one of them and let IMG-M1 copy it.",
	"IMG-V2": "Create the StorageClass first, or fix the class name in the image (check `kubectl get storageclass`).",
	"IMG-V3": "Set `spec.backend: cdi` (or leave it unset: IMG-M2 fills it from the profile), or put a backing image on a Longhorn v1 class (`dataEngine` absent or `v1`). A stored image's backend cannot change: recreate it.",
	"IMG-V4": "Revert the change to the storage class, backend, sourceType, url, pvcName or pvcNamespace; to change them, create a new image and move the VMs to it.",
	"IMG-V5": "Set `spec.pvcName` and `spec.pvcNamespace` to an existing PVC, stop the VM or pod that mounts it, and export a CDI volume to a class whose profile keeps CDI volumes rather than to Longhorn v1.",
	"IMG-V7": "Give the image a display name of at most 63 letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit (Harvester v1.9 and later write it into a label); a stored image's display name cannot change: recreate the image to rename it.",
	"IMG-V6": "Name a PVC (or an image) you may `get`, or ask an administrator for a Role that grants it (`kubectl auth can-i get persistentvolumeclaims/NAME -n NAMESPACE` tells); a 503 \"could not check\" is retried by clients and passes once the API server answers the SubjectAccessReview.",
	"PVC-M1": "Nothing: the mark is what protects the PVC that holds the image; delete the image, not the PVC, when it is no longer needed.",
	"PVC-V1": "Keep `harvesterhci.io/goldenImage: \"true\"` on the PVC: it marks the PVC an image lives in; delete the image when it is no longer needed, and the PVC goes with it.",
	"PVC-V2": "Delete the VirtualMachineImage instead: the garbage collector and Harvester (the default privileged users) then remove its PVC; `--privileged-user` replaces that list, so an administrator who adds a user must repeat them.",
	"PVC-V3": "Request at least the size the message names in `spec.resources.requests.storage`, and check the `harvesterhci.io/imageId` annotation names the image as `namespace/name`.",
	"PVC-V4": "Make `harvesterhci.io/imageId` name the image the storage class was made for (the image whose `status.storageClassName` is the class), or put the disk on a class without a `backingImage` parameter; a stored PVC's class cannot change: recreate it.",
	"VM-V1":  "Raise the disk's storage request (volumeClaimTemplates entry or dataVolumeTemplate) to at least the size the message names, and make the `harvesterhci.io/volumeClaimTemplates` annotation a JSON array of PVCs.",
	"VM-V2":  "Give the VM a disk cloned from the image (a volumeClaimTemplates entry with the image reference, or a DataVolume cloning the golden PVC) instead of the golden PVC itself.",
	"VM-V3":  "Share only a data disk (not the boot disk), with `cache` unset or `none`, backed by a `persistentVolumeClaim` volume of an existing ReadWriteMany, `volumeMode: Block` PVC of a provisioner other than Longhorn (Harvester v1.9 and later); or drop `shareable: true`.",
	"VM-V4":  "Make the volumeClaimTemplates entry's `harvesterhci.io/imageId` name the image its storage class was made for (or leave it out: the class's image is then the one checked), or choose a class without a `backingImage` parameter.",
	"DV-M1":  "Nothing; to clone another way, set `cdi.kubevirt.io/cloneType` on the DataVolume yourself or change the class's profile (`cloneStrategy` in the `--providers` file).",
	"DV-M2":  "Nothing; the image's DataVolume is bound at once so the image becomes ready without a consuming pod.",
	"DV-V1":  "Request at least the size the message names in the DataVolume's `spec.storage` (or `spec.pvc`), or leave the size out so CDI sizes the clone from its source.",
	"DV-V2":  "Delete the VirtualMachineImage instead of its DataVolume; the DataVolume is removed with it.",
	"SP-M1":  "Nothing; a `spec.cloneStrategy` or `spec.snapshotClass` you set on the StorageProfile is kept, the profile only fills the unset ones.",
	"SC-M1":  "Nothing; an annotation or parameter you set when creating the class is kept, the profile's defaults only fill what is absent (parameters cannot be changed after creation).",
	"SC-V1":  "Set `cdi.kubevirt.io/clone-strategy` to exactly `copy`, `snapshot` or `csi-clone` (lower case), or remove it.",
	"SC-V3":  "Fix the annotation the message names: a clone strategy of `copy`, `snapshot` or `csi-clone`; an existing VolumeSnapshotClass (create it first); access modes as JSON such as `{\"Block\":[\"ReadWriteOnce\"]}`; an overhead such as `0.055`; give a `snapshot` clone strategy a snapshot class; keep the two clone-strategy annotations equal; and keep all four off Longhorn v1 classes. For the warning, set the access-modes annotation.",
	"SC-V2":  "List the images with the command the message gives and delete them first (an image's class cannot change: recreate any you still need on another class), then delete the class.",
	"VS-V1":  "Protect the data another way, or move it to a class whose profile allows volume snapshots on the Harvester release in force (Longhorn v2 from v1.7; `volumeSnapshots: true` in the `--providers` file); from v1.9, snapshot a volume only while no VM uses it as a shareable disk.",
	"VMB-V1": "Do what the message says for each volume: take the kind the release allows (`storage-webhook profiles` lists each class's VM-SNAP and VM-BACKUP), add the provisioner's snapshot classes to Harvester's `csi-driver-config` setting, set its `backup-target` for backups, or detach a shareable disk; `spec.type` must be `backup` or `snapshot`.",
	"DECODE": "Fix the field the message names: it has the wrong JSON type for its kind (a number where a string belongs, a string where a map belongs, a quantity that does not parse).",
	"ROUTE":  "Fix the webhook configuration's rules so each path only receives its own resource: re-apply `deploy/base/webhooks.yaml` (generated from the route table) rather than editing it by hand.",
}
