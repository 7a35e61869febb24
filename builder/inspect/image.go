package inspect

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"minibuild/oci"
)

// Annotations an image carries about its base (image-spec
// annotations.md, "Pre-Defined Annotation Keys").
const (
	AnnotationBaseName   = "org.opencontainers.image.base.name"
	AnnotationBaseDigest = "org.opencontainers.image.base.digest"
	annotationRefName    = "org.opencontainers.image.ref.name"
)

// maxIndex bounds an image index read from the store.
const maxIndex = 4 << 20

// Image is one image manifest of the store with its config, as the
// functions of this package read it. It is a value: nothing here changes it.
type Image struct {
	// Ref is the reference the image was opened by.
	Ref string
	// Name is the tag the reference went through (normalized, like
	// "docker.io/library/busybox:latest"), or the tag of the index.json
	// entry a digest or short ID matched; "" for an untagged image.
	Name string
	// Descriptor is the image manifest's (the platform's manifest when
	// Ref names a multi-platform index).
	Descriptor v1.Descriptor
	Manifest   *v1.Manifest
	Config     *v1.ConfigFile

	store *oci.Store
}

// Layer is one layer of an image and the history entry that made it.
type Layer struct {
	Index      int // 1-based, bottom up
	Descriptor v1.Descriptor
	DiffID     v1.Hash
	// History is the entry that made the layer: the image's non-empty
	// history entries are matched with its layers in order. Nil when the
	// history has fewer such entries than the image has layers.
	History *v1.History
}

// Open reads the image ref names in s (see [oci.Store.Resolve]: a tag, a
// digest or a short ID). A multi-platform index stands for its manifest for
// the host's platform ([oci.HostPlatform]). Errors wrap the store's
// sentinels ([oci.ErrNotFound], …).
func Open(s *oci.Store, ref string) (*Image, error) {
	d, err := s.Resolve(ref)
	if err != nil {
		return nil, err
	}
	name := d.Annotations[annotationRefName]
	if isIndex(d.MediaType) {
		if d, err = hostManifest(s, d); err != nil {
			return nil, fmt.Errorf("open image %s: %w", ref, err)
		}
	}
	img, err := s.Image(d.Digest)
	if err != nil {
		return nil, fmt.Errorf("open image %s: %w", ref, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("open image %s: manifest: %w", ref, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("open image %s: config: %w", ref, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("open image %s: %w: config has %d diff IDs for %d layers", ref, oci.ErrInvalid, len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	return &Image{Ref: ref, Name: name, Descriptor: d, Manifest: m, Config: cfg, store: s}, nil
}

func isIndex(mt types.MediaType) bool {
	return mt == types.OCIImageIndex || mt == types.DockerManifestList
}

// hostManifest picks the host platform's manifest of the index d.
func hostManifest(s *oci.Store, d v1.Descriptor) (v1.Descriptor, error) {
	rc, err := s.OpenBlob(d.Digest)
	if err != nil {
		return v1.Descriptor{}, err
	}
	b, err := io.ReadAll(io.LimitReader(rc, maxIndex))
	err = errors.Join(err, rc.Close())
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("read index %s: %w", d.Digest, err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(b, &idx); err != nil {
		return v1.Descriptor{}, fmt.Errorf("read index %s: %w: %w", d.Digest, oci.ErrInvalid, err)
	}
	host := oci.HostPlatform()
	for _, m := range idx.Manifests {
		if m.Platform == nil || isIndex(m.MediaType) {
			continue
		}
		p, err := oci.ParsePlatform(m.Platform.String())
		if err != nil || p.OS != host.OS || p.Architecture != host.Architecture {
			continue
		}
		if p.Variant == host.Variant || p.Variant == "" || host.Variant == "" {
			if !s.HasBlob(m.Digest) {
				return v1.Descriptor{}, fmt.Errorf("index %s: manifest for %s: %w", d.Digest, host, oci.ErrNotFound)
			}
			return m, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("index %s has no image for %s: %w", d.Digest, host, oci.ErrNotFound)
}

// Layers lists the image's layers, bottom up, with their history entries.
func (im *Image) Layers() []Layer {
	ls := make([]Layer, len(im.Manifest.Layers))
	hist := im.layerHistory()
	for i, d := range im.Manifest.Layers {
		ls[i] = Layer{Index: i + 1, Descriptor: d, DiffID: im.Config.RootFS.DiffIDs[i]}
		if hist[i] >= 0 {
			h := im.Config.History[hist[i]]
			ls[i].History = &h
		}
	}
	return ls
}

// layerHistory maps each layer to the index of its history entry, or -1.
// The n-th non-empty entry made the n-th layer, as Docker reads it.
func (im *Image) layerHistory() []int {
	out := make([]int, len(im.Manifest.Layers))
	for i := range out {
		out[i] = -1
	}
	n := 0
	for i, h := range im.Config.History {
		if h.EmptyLayer {
			continue
		}
		if n == len(out) {
			break
		}
		out[n] = i
		n++
	}
	return out
}

// Instruction is what made layer l, for people: its history entry's
// created_by ("RUN /bin/sh -c make # buildkit") shortened to the
// Dockerfile instruction ("RUN make"), or "" when unknown.
func (l Layer) Instruction() string {
	if l.History == nil {
		return ""
	}
	return Instruction(l.History.CreatedBy)
}

// BaseLayers is how many of the image's bottom layers are its base image's,
// as its base annotations say: 0 when it records no base, or the base is
// not in the store or is not a prefix of the image.
func (im *Image) BaseLayers() int {
	dgst := im.Manifest.Annotations[AnnotationBaseDigest]
	if dgst == "" {
		return 0
	}
	base, err := Open(im.store, dgst)
	if err != nil {
		return 0
	}
	if checkLayerPrefix(base, im) != nil {
		return 0
	}
	return len(base.Manifest.Layers)
}
