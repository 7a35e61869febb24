package oci

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ociLayerType maps Docker layer media types to their OCI equivalents (same
// bytes), so a manifest minibuild writes is OCI throughout.
var ociLayerType = map[types.MediaType]types.MediaType{
	types.DockerLayer:             types.OCILayer,
	types.DockerUncompressedLayer: types.OCIUncompressedLayer,
	types.DockerForeignLayer:      types.OCIRestrictedLayer,
}

// PutImage writes cfg and an OCI manifest referencing it and layers, whose
// blobs must already be in the store ([ErrNotFound] otherwise), and returns
// the manifest's descriptor. It tags nothing: an untagged image is garbage
// for [Store.GC] unless tagged or passed as a root. Docker layer media types
// are written as their OCI equivalents. cfg is not modified.
func (s *Store) PutImage(ctx context.Context, cfg *v1.ConfigFile, layers []v1.Descriptor, annotations map[string]string) (v1.Descriptor, error) {
	if cfg == nil || len(cfg.RootFS.DiffIDs) != len(layers) {
		n := -1
		if cfg != nil {
			n = len(cfg.RootFS.DiffIDs)
		}
		return v1.Descriptor{}, fmt.Errorf("put image: %w: config has %d diff IDs for %d layers", ErrInvalid, n, len(layers))
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Layers:        make([]v1.Descriptor, len(layers)),
		Annotations:   annotations,
	}
	for i, l := range layers {
		if t, ok := ociLayerType[l.MediaType]; ok {
			l.MediaType = t
		}
		if !isLayerType(l.MediaType) {
			return v1.Descriptor{}, fmt.Errorf("put image: layer %d (%s): media type %q: %w", i+1, l.Digest, l.MediaType, ErrUnsupported)
		}
		size, err := s.layerSize(l.Digest) // local, or lazy (known remotely)
		if err != nil {
			return v1.Descriptor{}, fmt.Errorf("put image: layer %d: %w", i+1, err)
		}
		if size != l.Size {
			return v1.Descriptor{}, fmt.Errorf("put image: layer %d (%s): descriptor size %d, blob has %d bytes: %w", i+1, l.Digest, l.Size, size, ErrSizeMismatch)
		}
		m.Layers[i] = l
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("put image: encode config: %w", err)
	}
	if m.Config, err = s.putJSON(ctx, raw, types.OCIConfigJSON); err != nil {
		return v1.Descriptor{}, fmt.Errorf("put image: %w", err)
	}
	if raw, err = json.Marshal(m); err != nil {
		return v1.Descriptor{}, fmt.Errorf("put image: encode manifest: %w", err)
	}
	d, err := s.putJSON(ctx, raw, types.OCIManifestSchema1)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("put image: %w", err)
	}
	return d, nil
}

func (s *Store) putJSON(ctx context.Context, b []byte, mt types.MediaType) (v1.Descriptor, error) {
	sum := sha256.Sum256(b)
	d := v1.Descriptor{MediaType: mt, Size: int64(len(b)), Digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}}
	return d, s.WriteBlob(ctx, bytes.NewReader(b), d.Digest, d.Size)
}

// Image is a read-only go-containerregistry view of the image manifest h.
// Every blob it reads is verified at EOF (see [Store.OpenBlob]); layers
// come back as stored, Uncompressed() decompressing gzip and zstd. An image
// index is [ErrUnsupported] here: resolve a platform's manifest first.
func (s *Store) Image(h v1.Hash) (v1.Image, error) {
	raw, err := s.readBlob(h, maxMetadata)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", h, err)
	}
	d := v1.Descriptor{MediaType: sniffMediaType(raw), Size: int64(len(raw)), Digest: h}
	if isIndexType(d.MediaType) {
		return nil, fmt.Errorf("image %s: an image index, not a manifest: %w", h, ErrUnsupported)
	}
	m, err := parseManifest(raw, d)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&storeImage{s: s, desc: d, raw: raw, m: m})
}

// storeImage is the core partial.CompressedToImage completes.
type storeImage struct {
	s    *Store
	desc v1.Descriptor
	raw  []byte
	m    *v1.Manifest

	cfgOnce sync.Once
	cfg     []byte
	cfgErr  error
}

var _ partial.CompressedImageCore = (*storeImage)(nil)

func (i *storeImage) MediaType() (types.MediaType, error) { return i.desc.MediaType, nil }

func (i *storeImage) RawManifest() ([]byte, error) { return i.raw, nil }

func (i *storeImage) RawConfigFile() ([]byte, error) {
	i.cfgOnce.Do(func() { i.cfg, i.cfgErr = i.s.readBlob(i.m.Config.Digest, maxMetadata) })
	return i.cfg, i.cfgErr
}

func (i *storeImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == i.m.Config.Digest {
		return &storeBlob{s: i.s, d: i.m.Config}, nil
	}
	for n, l := range i.m.Layers {
		if l.Digest == h {
			return &storeBlob{s: i.s, d: l, img: i, index: n}, nil
		}
	}
	return nil, fmt.Errorf("image %s: layer %s: %w", i.desc.Digest, h, ErrNotFound)
}

// storeBlob is a layer (or the config) of a storeImage.
type storeBlob struct {
	s     *Store
	d     v1.Descriptor
	img   *storeImage // nil for the config
	index int
}

var _ partial.CompressedLayer = (*storeBlob)(nil)

func (b *storeBlob) Digest() (v1.Hash, error)            { return b.d.Digest, nil }
func (b *storeBlob) Size() (int64, error)                { return b.d.Size, nil }
func (b *storeBlob) MediaType() (types.MediaType, error) { return b.d.MediaType, nil }
func (b *storeBlob) Compressed() (io.ReadCloser, error)  { return b.s.OpenBlob(b.d.Digest) }

// Descriptor keeps the manifest's descriptor (annotations, URLs) when the
// image is written elsewhere.
func (b *storeBlob) Descriptor() (*v1.Descriptor, error) { d := b.d; return &d, nil }

// DiffID comes from the config, sparing a decompression.
func (b *storeBlob) DiffID() (v1.Hash, error) {
	if b.img == nil {
		return b.d.Digest, nil
	}
	raw, err := b.img.RawConfigFile()
	if err != nil {
		return v1.Hash{}, err
	}
	cfg, err := parseConfig(raw, b.img.m)
	if err != nil {
		return v1.Hash{}, err
	}
	return cfg.RootFS.DiffIDs[b.index], nil
}

// ImageInfo describes one entry of index.json.
type ImageInfo struct {
	Name      string          // normalized tag; "" for an untagged image
	Digest    v1.Hash         // of the manifest or index
	MediaType types.MediaType // of the manifest or index
	Size      int64           // bytes of every blob of the image, as stored
	Created   time.Time       // config "created" (latest of an index's images); zero if unset
}

// Images lists index.json, newest first, then by name.
func (s *Store) Images() ([]ImageInfo, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	infos := make([]ImageInfo, 0, len(idx.Manifests))
	for _, d := range idx.Manifests {
		info, err := s.imageInfo(context.Background(), d)
		if err != nil {
			return nil, fmt.Errorf("list images: %w", err)
		}
		infos = append(infos, info)
	}
	slices.SortStableFunc(infos, func(a, b ImageInfo) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return infos, nil
}

func (s *Store) imageInfo(ctx context.Context, d v1.Descriptor) (ImageInfo, error) {
	info := ImageInfo{Name: refName(d), Digest: d.Digest, MediaType: d.MediaType}
	err := walkGraph(ctx, d, s.readVerified, func(b v1.Descriptor, kind blobKind, _ []byte, m *v1.Manifest) error {
		info.Size += b.Size
		if kind != kindConfig {
			return nil
		}
		raw, err := s.readBlob(b.Digest, maxMetadata)
		if err != nil {
			return err
		}
		cfg, err := parseConfig(raw, m)
		if err != nil {
			return err
		}
		if cfg.Created.After(info.Created) {
			info.Created = cfg.Created.Time
		}
		return nil
	})
	if err != nil {
		return ImageInfo{}, fmt.Errorf("image %s: %w", d.Digest, err)
	}
	return info, nil
}

// readVerified reads the blob of d from the store, checking d's size.
func (s *Store) readVerified(d v1.Descriptor) ([]byte, error) {
	b, err := s.readBlob(d.Digest, maxMetadata)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != d.Size {
		return nil, fmt.Errorf("blob %s: %d bytes, descriptor says %d: %w", d.Digest, len(b), d.Size, ErrSizeMismatch)
	}
	return b, nil
}

// Inspection is what `minibuild inspect` shows of an image.
type Inspection struct {
	Names      []string        // every tag of the image
	Descriptor v1.Descriptor   // of the manifest or index
	Manifest   json.RawMessage // the manifest or index, as stored
	Config     json.RawMessage // the config; nil for an index
}

// Inspect resolves ref (see [Store.Resolve]) and returns its manifest and
// config as stored.
func (s *Store) Inspect(ref string) (*Inspection, error) {
	d, err := s.Resolve(ref)
	if err != nil {
		return nil, err
	}
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	in := &Inspection{Descriptor: d}
	for _, e := range idx.Manifests {
		if n := refName(e); e.Digest == d.Digest && n != "" {
			in.Names = append(in.Names, n)
		}
	}
	if in.Manifest, err = s.readVerified(d); err != nil {
		return nil, fmt.Errorf("inspect %s: %w", ref, err)
	}
	if isIndexType(d.MediaType) {
		return in, nil
	}
	m, err := parseManifest(in.Manifest, d)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", ref, err)
	}
	if in.Config, err = s.readVerified(m.Config); err != nil {
		return nil, fmt.Errorf("inspect %s: %w", ref, err)
	}
	return in, nil
}
