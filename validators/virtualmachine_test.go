package validators

import (
	"reflect"
	"testing"

	"github.com/hcistorage/storage-webhook/harvester"
)

// TestAnnotationTagsAreTheKeys: the rules that read one annotation as a tagged field (a tag
// cannot name a constant) read the key of harvester's constant: claimTemplate's image
// reference and storedPVC's golden mark.
func TestAnnotationTagsAreTheKeys(t *testing.T) {
	for _, c := range []struct {
		typ   reflect.Type
		field string
		key   string
	}{
		{reflect.TypeFor[claimTemplate](), "ImageID", harvester.AnnImageID},
		{reflect.TypeFor[storedPVC](), "Golden", harvester.AnnGoldenImage},
	} {
		metadata, _ := c.typ.FieldByName("Metadata")
		annotations, _ := metadata.Type.FieldByName("Annotations")
		f, _ := annotations.Type.FieldByName(c.field)
		if got := f.Tag.Get("json"); got != c.key {
			t.Errorf("%s reads annotation %q, want %q", c.typ, got, c.key)
		}
	}
}
