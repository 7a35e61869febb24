package cache

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Shared caches (`--cache-to`, `--cache-from`): step records travel as the
// config document of an OCI artifact whose layers are the records' layer
// blobs (docs/cache.md, "Shared cache format"). This file owns the
// document; moving it and the blobs is the builder's and package oci's.

const (
	// ExportMediaType is the media type of an [Export] document, the
	// config blob of a shared cache artifact. The major version is in
	// the name: a reader refuses any other.
	ExportMediaType = "application/vnd.minibuild.cache.config.v1+json"
	// ExportArtifactType is the artifactType of a shared cache's manifest.
	ExportArtifactType = "application/vnd.minibuild.cache.v1"
	// ExportVersion is [Export.Version] of the documents this package
	// writes and reads.
	ExportVersion = "minibuild.cache.v1"
)

// ErrInvalidExport is returned by [DecodeExport] for a document that is
// not a shared cache this version can read.
var ErrInvalidExport = errors.New("invalid shared cache document")

// Export is a shared cache's config document.
type Export struct {
	// Version is [ExportVersion].
	Version string `json:"version"`
	// Records are sorted by key, one per key.
	Records []ExportRecord `json:"records"`
}

// ExportRecord is a [Record] as a shared cache carries it: without the
// times, which mean something only in the store that wrote them, so that
// the same records always make the same document (and the same artifact
// digest).
type ExportRecord struct {
	Key   v1.Hash  `json:"key"`
	Parts Parts    `json:"parts"`
	Layer LayerRef `json:"layer,omitzero"`
}

// EncodeExport returns the document holding records, sorted by key, one
// per key. A record whose key is not the key of its Parts (one whose parts
// did not survive storage, such as an instruction with bytes that are not
// UTF-8) is left out: no reader could trust it.
func EncodeExport(records []Record) ([]byte, error) {
	doc := Export{Version: ExportVersion, Records: []ExportRecord{}}
	for _, r := range records {
		p := r.Parts.Normalize()
		if p.Key() != r.Key {
			continue
		}
		doc.Records = append(doc.Records, ExportRecord{Key: r.Key, Parts: p, Layer: r.Layer})
	}
	slices.SortFunc(doc.Records, func(a, b ExportRecord) int { return cmp.Compare(a.Key.Hex, b.Key.Hex) })
	doc.Records = slices.CompactFunc(doc.Records, func(a, b ExportRecord) bool { return a.Key == b.Key })
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode shared cache: %w", err)
	}
	return b, nil
}

// DecodeExport parses a shared cache document and returns the records it
// can trust, ready for [Store.Put]. A document that is not JSON or has
// another version is an error wrapping [ErrInvalidExport]. A record is
// rejected, with the reason in rejected, when its key is not the sha256
// of its Parts' canonical form (docs/cache.md §2) — the check that makes
// an imported record as good as one this store wrote for the same parts —
// or when its layer is not a well-formed sha256 descriptor with a diff ID.
// The layer's bytes are not checked here: they are verified against the
// digest and diff ID whenever they are fetched and unpacked.
func DecodeExport(data []byte) (records []Record, rejected []error, err error) {
	// Records are decoded one by one: a malformed one is rejected, not
	// the whole document.
	var doc struct {
		Version string            `json:"version"`
		Records []json.RawMessage `json:"records"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, nil, fmt.Errorf("decode shared cache: %w: %w", ErrInvalidExport, err)
	}
	if dec.More() {
		return nil, nil, fmt.Errorf("decode shared cache: %w: data after the document", ErrInvalidExport)
	}
	if doc.Version != ExportVersion {
		return nil, nil, fmt.Errorf("decode shared cache: %w: version %q, want %q", ErrInvalidExport, doc.Version, ExportVersion)
	}
	seen := map[v1.Hash]bool{}
	for i, raw := range doc.Records {
		var er ExportRecord
		if err := json.Unmarshal(raw, &er); err != nil {
			rejected = append(rejected, fmt.Errorf("record %d: %w", i+1, err))
			continue
		}
		r := Record{Key: er.Key, Parts: er.Parts.Normalize(), Layer: er.Layer}
		if err := checkExportRecord(r); err != nil {
			rejected = append(rejected, fmt.Errorf("record %d (%s): %w", i+1, er.Key, err))
			continue
		}
		if seen[r.Key] {
			continue
		}
		seen[r.Key] = true
		records = append(records, r)
	}
	return records, rejected, nil
}

// checkExportRecord is what an imported record must satisfy.
func checkExportRecord(r Record) error {
	if !isSHA256(r.Key) {
		return errors.New("key is not a sha256 digest")
	}
	if got := r.Parts.Key(); got != r.Key {
		return fmt.Errorf("parts hash to %s: %w", got, ErrKeyMismatch)
	}
	l := r.Layer
	if l == (LayerRef{}) {
		return nil // a step that made no layer
	}
	switch {
	case !isSHA256(l.Digest):
		return errors.New("layer digest is not a sha256 digest")
	case !isSHA256(l.DiffID):
		return fmt.Errorf("layer %s: diff ID is not a sha256 digest", l.Digest)
	case l.Size < 0 || l.UncompressedSize < 0:
		return fmt.Errorf("layer %s: negative size", l.Digest)
	case l.MediaType == "":
		return fmt.Errorf("layer %s: no media type", l.Digest)
	}
	return nil
}

func isSHA256(h v1.Hash) bool {
	if h.Algorithm != "sha256" || len(h.Hex) != 64 {
		return false
	}
	for _, c := range h.Hex {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
