package oci

import (
	"context"
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// maxMetadata bounds the manifests, indexes and configs read into memory.
// Registries cap manifests at 4 MiB; configs with long histories are larger.
const maxMetadata = 32 << 20

// blobKind is the role of a blob in an image graph.
type blobKind int

const (
	kindIndex blobKind = iota
	kindManifest
	kindConfig
	kindLayer
)

func (k blobKind) String() string {
	return [...]string{"index", "manifest", "config", "layer"}[k]
}

func isIndexType(mt types.MediaType) bool {
	return mt == types.OCIImageIndex || mt == types.DockerManifestList
}

func isManifestType(mt types.MediaType) bool {
	return mt == types.OCIManifestSchema1 || mt == types.DockerManifestSchema2
}

func isConfigType(mt types.MediaType) bool {
	return mt == types.OCIConfigJSON || mt == types.DockerConfigJSON
}

func isLayerType(mt types.MediaType) bool {
	switch mt {
	case types.OCILayer, types.OCILayerZStd, types.OCIUncompressedLayer,
		types.OCIRestrictedLayer, types.OCIUncompressedRestrictedLayer,
		types.DockerLayer, types.DockerUncompressedLayer, types.DockerForeignLayer:
		return true
	}
	return false
}

// rootKind classifies a descriptor that index.json (or an index) points at.
func rootKind(d v1.Descriptor) (blobKind, error) {
	switch {
	case isIndexType(d.MediaType):
		return kindIndex, nil
	case isManifestType(d.MediaType):
		return kindManifest, nil
	}
	return 0, fmt.Errorf("image %s: media type %q is not an image manifest or index: %w", d.Digest, d.MediaType, ErrUnsupported)
}

// header is the part of a manifest or index that says what it is.
type header struct {
	SchemaVersion int64           `json:"schemaVersion"`
	MediaType     types.MediaType `json:"mediaType"`
}

func checkHeader(b []byte, d v1.Descriptor, kind blobKind) error {
	var h header
	if err := json.Unmarshal(b, &h); err != nil {
		return fmt.Errorf("parse %s %s: %w: %w", kind, d.Digest, ErrInvalid, err)
	}
	if h.SchemaVersion != 2 {
		return fmt.Errorf("%s %s: schemaVersion %d: %w", kind, d.Digest, h.SchemaVersion, ErrUnsupported)
	}
	if h.MediaType != "" && h.MediaType != d.MediaType {
		return fmt.Errorf("%s %s: media type %q, descriptor says %q: %w", kind, d.Digest, h.MediaType, d.MediaType, ErrInvalid)
	}
	return nil
}

func parseIndex(b []byte, d v1.Descriptor) (*v1.IndexManifest, error) {
	if err := checkHeader(b, d, kindIndex); err != nil {
		return nil, err
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("parse index %s: %w: %w", d.Digest, ErrInvalid, err)
	}
	return &idx, nil
}

// parseManifest parses an image manifest and checks the media types of
// what it references.
func parseManifest(b []byte, d v1.Descriptor) (*v1.Manifest, error) {
	if err := checkHeader(b, d, kindManifest); err != nil {
		return nil, err
	}
	var m v1.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parse manifest %s: %w: %w", d.Digest, ErrInvalid, err)
	}
	if !isConfigType(m.Config.MediaType) {
		return nil, fmt.Errorf("manifest %s: config %s: media type %q: %w", d.Digest, m.Config.Digest, m.Config.MediaType, ErrUnsupported)
	}
	for i, l := range m.Layers {
		if !isLayerType(l.MediaType) {
			return nil, fmt.Errorf("manifest %s: layer %d (%s): media type %q: %w", d.Digest, i+1, l.Digest, l.MediaType, ErrUnsupported)
		}
	}
	return &m, nil
}

// parseConfig parses an image config and checks it against its manifest.
func parseConfig(b []byte, m *v1.Manifest) (*v1.ConfigFile, error) {
	var cfg v1.ConfigFile
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("parse config %s: %w: %w", m.Config.Digest, ErrInvalid, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("config %s: %d diff IDs for %d layers: %w", m.Config.Digest, len(cfg.RootFS.DiffIDs), len(m.Layers), ErrInvalid)
	}
	return &cfg, nil
}

// graphVisitor is called by walkGraph for each blob, parents first. For an
// index or manifest, data holds its verified bytes; for configs and layers
// it is nil (the visitor reads them if it needs to).
type graphVisitor func(d v1.Descriptor, kind blobKind, data []byte, m *v1.Manifest) error

// walkGraph visits root and every blob it references once, reading indexes
// and manifests through read (which must verify digest and size).
func walkGraph(ctx context.Context, root v1.Descriptor, read func(v1.Descriptor) ([]byte, error), visit graphVisitor) error {
	seen := map[v1.Hash]bool{}
	var walk func(d v1.Descriptor) error
	walk = func(d v1.Descriptor) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if seen[d.Digest] {
			return nil
		}
		seen[d.Digest] = true
		kind, err := rootKind(d)
		if err != nil {
			return err
		}
		b, err := read(d)
		if err != nil {
			return err
		}
		if kind == kindIndex {
			idx, err := parseIndex(b, d)
			if err != nil {
				return err
			}
			if err := visit(d, kind, b, nil); err != nil {
				return err
			}
			for _, c := range idx.Manifests {
				if err := walk(c); err != nil {
					return fmt.Errorf("index %s: %w", d.Digest, err)
				}
			}
			return nil
		}
		m, err := parseManifest(b, d)
		if err != nil {
			return err
		}
		if err := visit(d, kind, b, m); err != nil {
			return err
		}
		if !seen[m.Config.Digest] {
			seen[m.Config.Digest] = true
			if err := visit(m.Config, kindConfig, nil, m); err != nil {
				return fmt.Errorf("manifest %s: %w", d.Digest, err)
			}
		}
		for _, l := range m.Layers {
			if seen[l.Digest] {
				continue
			}
			seen[l.Digest] = true
			if err := visit(l, kindLayer, nil, m); err != nil {
				return fmt.Errorf("manifest %s: %w", d.Digest, err)
			}
		}
		return nil
	}
	return walk(root)
}
