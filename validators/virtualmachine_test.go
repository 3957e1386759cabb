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
