package cache_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"minibuild/cache"
)

// exportRecords are a RUN record with a layer, and a WORKDIR record that
// made none.
func exportRecords() []cache.Record {
	run := sampleRecord()
	run.Parts = run.Parts.Normalize()
	run.Key = run.Parts.Key()
	run.Created = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	wd := cache.Record{Parts: cache.Parts{Parent: cache.Scratch, Instruction: "WORKDIR /app", Platform: "linux/amd64"}}
	wd.Parts = wd.Parts.Normalize()
	wd.Key = wd.Parts.Key()
	return []cache.Record{run, wd}
}

func TestExportRoundTrip(t *testing.T) {
	t.Parallel()
	recs := exportRecords()
	// Order, duplicates and times do not change the document.
	a, err := cache.EncodeExport(recs)
	if err != nil {
		t.Fatal(err)
	}
	later := recs[0]
	later.Created = later.Created.Add(time.Hour)
	b, err := cache.EncodeExport([]cache.Record{recs[1], later, recs[0]})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("EncodeExport depends on order, duplicates or times:\n%s\n%s", a, b)
	}
	got, rejected, err := cache.DecodeExport(a)
	if err != nil || len(rejected) != 0 {
		t.Fatalf("DecodeExport = %v, %v", rejected, err)
	}
	want := []cache.Record{recs[0], recs[1]}
	if recs[1].Key.Hex < recs[0].Key.Hex {
		want = []cache.Record{recs[1], recs[0]}
	}
	for i := range want {
		want[i].Created = time.Time{}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DecodeExport(EncodeExport(records)) mismatch (-want +got):\n%s", diff)
	}
	for _, r := range got {
		if r.Key != r.Parts.Key() {
			t.Errorf("decoded record %s has parts hashing to %s", r.Key, r.Parts.Key())
		}
	}
}

func TestExportEncodeSkipsUntrustworthy(t *testing.T) {
	t.Parallel()
	recs := exportRecords()
	recs[0].Key = hash("ee") // does not match its parts
	b, err := cache.EncodeExport(recs)
	if err != nil {
		t.Fatal(err)
	}
	var doc cache.Export
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != cache.ExportVersion || len(doc.Records) != 1 || doc.Records[0].Key != recs[1].Key {
		t.Errorf("EncodeExport with a mismatched key = %s, want only %s", b, recs[1].Key)
	}
}

// TestExportDecodeRejects checks that nothing but a record whose parts
// hash to its key, with a well-formed layer, is ever returned.
func TestExportDecodeRejects(t *testing.T) {
	t.Parallel()
	good := exportRecords()[0]
	doc := func(edit func(*cache.ExportRecord)) []byte {
		parts := good.Parts
		parts.Env, parts.Inputs = slices.Clone(parts.Env), slices.Clone(parts.Inputs)
		r := cache.ExportRecord{Key: good.Key, Parts: parts, Layer: good.Layer}
		edit(&r)
		b, err := json.Marshal(cache.Export{Version: cache.ExportVersion, Records: []cache.ExportRecord{r}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		edit func(*cache.ExportRecord)
		want string
	}{
		{"other key", func(r *cache.ExportRecord) { r.Key = hash("ab") }, "does not match its parts"},
		{"edited instruction", func(r *cache.ExportRecord) { r.Parts.Instruction = "RUN make evil" }, "does not match its parts"},
		{"edited input", func(r *cache.ExportRecord) { r.Parts.Inputs[0].Digest = hash("cd") }, "does not match its parts"},
		{"no key", func(r *cache.ExportRecord) { r.Key = v1.Hash{} }, "cannot parse hash"},
		{"layer without diff ID", func(r *cache.ExportRecord) { r.Layer.DiffID = v1.Hash{} }, "diff ID"},
		{"bad layer digest", func(r *cache.ExportRecord) { r.Layer.Digest = v1.Hash{Algorithm: "sha512", Hex: "00"} }, "hex digits"},
		{"uppercase layer digest", func(r *cache.ExportRecord) { r.Layer.Digest.Hex = strings.ToUpper(r.Layer.Digest.Hex) }, "non-hex"},
		{"size without digest", func(r *cache.ExportRecord) { r.Layer.Digest = v1.Hash{} }, "layer digest"},
		{"negative size", func(r *cache.ExportRecord) { r.Layer.Size = -1 }, "negative size"},
		{"no media type", func(r *cache.ExportRecord) { r.Layer.MediaType = "" }, "media type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, rejected, err := cache.DecodeExport(doc(tc.edit))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 0 || len(rejected) != 1 || !strings.Contains(rejected[0].Error(), tc.want) {
				t.Errorf("DecodeExport = %v, rejected %v; want nothing, rejected for %q", got, rejected, tc.want)
			}
		})
	}
	if _, rejected, _ := cache.DecodeExport(doc(func(r *cache.ExportRecord) { r.Key = hash("ab") })); !errors.Is(rejected[0], cache.ErrKeyMismatch) {
		t.Errorf("rejected record error %v does not wrap ErrKeyMismatch", rejected[0])
	}
}

func TestExportDecodeInvalid(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		``,
		`{`,
		`[]`,
		`{"version":"minibuild.cache.v2","records":[]}`,
		`{"records":[]}`,
		`{"version":"minibuild.cache.v1","records":[]} {}`,
		`{"version":"minibuild.cache.v1","records":{}}`,
	} {
		if _, _, err := cache.DecodeExport([]byte(in)); !errors.Is(err, cache.ErrInvalidExport) {
			t.Errorf("DecodeExport(%q) = %v, want ErrInvalidExport", in, err)
		}
	}
	got, rejected, err := cache.DecodeExport([]byte(`{"version":"minibuild.cache.v1","records":[],"future":1}`))
	if err != nil || len(got) != 0 || len(rejected) != 0 {
		t.Errorf("DecodeExport of an empty document with an unknown field = %v, %v, %v", got, rejected, err)
	}
}

// TestExportDoc keeps the example of docs/cache.md "Shared cache format"
// readable: one record, kept, with the golden key of §2.
func TestExportDoc(t *testing.T) {
	t.Parallel()
	doc := docExamples(t)["shared-cache"]
	got, rejected, err := cache.DecodeExport([]byte(doc))
	if err != nil || len(rejected) != 0 || len(got) != 1 {
		t.Fatalf("DecodeExport(docs example) = %v, rejected %v, %v", got, rejected, err)
	}
	if got[0].Key.String() != goldenKey {
		t.Errorf("docs example key = %s, want the golden %s", got[0].Key, goldenKey)
	}
	if got[0].Key != sampleParts().Key() {
		t.Errorf("docs example parts differ from sampleParts")
	}
}
