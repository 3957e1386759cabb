package validators

import (
	"reflect"
	"testing"

	"github.com/hcistorage/storage-webhook/harvester"
)

// TestClaimTemplateKey: the tag of claimTemplate's image annotation is harvester.AnnImageID.
func TestClaimTemplateKey(t *testing.T) {
	field, _ := reflect.TypeFor[claimTemplate]().FieldByName("Metadata")
	id, _ := field.Type.FieldByName("Annotations")
	ann, _ := id.Type.FieldByName("ImageID")
	if got := ann.Tag.Get("json"); got != harvester.AnnImageID {
		t.Errorf("claimTemplate reads annotation %q, want %q", got, harvester.AnnImageID)
	}
}

// TestStoredPVCMarkKey: the tag of storedPVC's golden mark is harvester.AnnGoldenImage.
func TestStoredPVCMarkKey(t *testing.T) {
	field, _ := reflect.TypeFor[storedPVC]().FieldByName("Metadata")
	ann, _ := field.Type.FieldByName("Annotations")
	mark, _ := ann.Type.FieldByName("Golden")
	if got := mark.Tag.Get("json"); got != harvester.AnnGoldenImage {
		t.Errorf("storedPVC reads annotation %q, want %q", got, harvester.AnnGoldenImage)
	}
}
