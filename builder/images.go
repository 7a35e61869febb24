package builder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"minibuild/oci"
)

// storeImages is the [ImageSource] of a build: images of the store (by
// tag or digest, pulled from their registry as the pull policy says), and
// OCI layouts named by --build-context oci-layout://PATH[:TAG|@DIGEST],
// imported into the store first so that their layers can be unpacked.
type storeImages struct {
	store  *oci.Store
	policy oci.PullPolicy
	ev     *emitter

	mu   sync.Mutex
	seen map[string]*BaseImage // by ref and platform: one lookup per build
}

var _ ImageSource = (*storeImages)(nil)

func newStoreImages(store *oci.Store, policy oci.PullPolicy, ev *emitter) *storeImages {
	return &storeImages{store: store, policy: policy, ev: ev, seen: map[string]*BaseImage{}}
}

// Image implements [ImageSource].
func (s *storeImages) Image(ctx context.Context, ref string, platform v1.Platform) (*BaseImage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	memo := ref + " " + formatPlatform(platform)
	if img, ok := s.seen[memo]; ok {
		return img, nil
	}
	v := s.ev.internal("[internal] load metadata for " + displayRef(ref))
	img, err := s.resolve(ctx, ref, platform, v)
	v.finish(err)
	if err != nil {
		return nil, err
	}
	s.seen[memo] = img
	return img, nil
}

// displayRef is how progress output names an image: normalized when it
// is a name ("docker.io/library/busybox:latest").
func displayRef(ref string) string {
	if n, err := oci.ParseName(ref); err == nil {
		return n
	}
	return ref
}

// resolve finds ref in the store, pulling it under the pull policy. A
// pull is lazy: manifest and config come now, layers stay in the registry
// until something reads them (a RUN or COPY on top of them, an output),
// so a build whose steps are all cached downloads no layer.
func (s *storeImages) resolve(ctx context.Context, ref string, platform v1.Platform, v *vertex) (*BaseImage, error) {
	var desc v1.Descriptor
	var err error
	name := ref
	switch {
	case strings.HasPrefix(ref, "oci-layout://"):
		desc, err = s.layout(ctx, strings.TrimPrefix(ref, "oci-layout://"), platform)
	case strings.HasPrefix(ref, "sha256:"):
		desc, err = s.store.Resolve(ref)
	default:
		if n, perr := oci.ParseName(ref); perr == nil {
			name = n
		}
		desc, err = s.store.ResolveBase(ctx, ref, s.policy, oci.PullOptions{Platform: platform, Lazy: true, Progress: blobReporter(v, "pulling")})
	}
	if err != nil {
		return nil, baseError(ref, err)
	}
	return s.load(name, desc)
}

// baseError words a base image that cannot be found so that the user
// knows how to get it.
func baseError(ref string, err error) error {
	if errors.Is(err, oci.ErrNotFound) {
		return fmt.Errorf("base image %s: %w (run `minibuild pull %s`, or `minibuild import` an archive of it): %w", ref, err, ref, ErrNotFound)
	}
	var re *oci.RemoteError
	if errors.As(err, &re) {
		return fmt.Errorf("base image %s is not in the store and pulling it failed (to build offline, `minibuild import` an archive of it first): %w", ref, err)
	}
	return fmt.Errorf("base image %s: %w", ref, err)
}

// load reads the manifest and config of desc from the store.
func (s *storeImages) load(name string, desc v1.Descriptor) (*BaseImage, error) {
	img, err := s.store.Image(desc.Digest)
	if err != nil {
		return nil, fmt.Errorf("base image %s: %w", name, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("base image %s: read manifest: %w", name, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("base image %s: read config: %w", name, err)
	}
	if len(m.Layers) != len(cfg.RootFS.DiffIDs) {
		return nil, fmt.Errorf("base image %s: %d layers but %d diff IDs in its config", name, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	return &BaseImage{Name: name, Digest: desc.Digest, Config: cfg, Layers: m.Layers}, nil
}

// layout finds the image an oci-layout:// build context names and makes
// sure it is in the store (importing the layout when it is not), without
// touching the store when it is there already.
func (s *storeImages) layout(ctx context.Context, spec string, platform v1.Platform) (v1.Descriptor, error) {
	dir, tag, digest := splitLayoutRef(spec)
	dir, err := filepath.Abs(dir)
	if err != nil {
		return v1.Descriptor{}, err
	}
	idx, err := readLayoutIndex(filepath.Join(dir, "index.json"))
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("oci layout %s: %w", dir, err)
	}
	d, err := pickLayoutEntry(idx, tag, digest)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("oci layout %s: %w", dir, err)
	}
	if d.MediaType == types.OCIImageIndex || d.MediaType == types.DockerManifestList {
		if d, err = layoutPlatform(dir, d, platform); err != nil {
			return v1.Descriptor{}, fmt.Errorf("oci layout %s: %w", dir, err)
		}
	}
	if !s.store.HasBlob(d.Digest) {
		if _, err := s.store.Import(ctx, dir, oci.ImportOptions{}); err != nil {
			return v1.Descriptor{}, err
		}
	}
	return d, nil
}

// splitLayoutRef splits "PATH[:TAG|@DIGEST]" (BuildKit's oci-layout
// syntax; a colon in the last path element starts the tag).
func splitLayoutRef(spec string) (dir, tag, digest string) {
	if i := strings.LastIndex(spec, "@sha256:"); i >= 0 {
		return spec[:i], "", spec[i+1:]
	}
	slash := strings.LastIndexByte(spec, '/')
	if i := strings.LastIndexByte(spec, ':'); i > slash {
		return spec[:i], spec[i+1:], ""
	}
	return spec, "", ""
}

func readLayoutIndex(p string) (*v1.IndexManifest, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return v1.ParseIndexManifest(f)
}

// pickLayoutEntry finds the index.json entry for tag (its ref.name
// annotation, bare or as the tail of a full name) or digest, or the only
// entry when neither is given.
func pickLayoutEntry(idx *v1.IndexManifest, tag, digest string) (v1.Descriptor, error) {
	var found []v1.Descriptor
	for _, d := range idx.Manifests {
		name := d.Annotations[ocispec.AnnotationRefName]
		switch {
		case digest != "" && d.Digest.String() == digest:
		case tag != "" && (name == tag || strings.HasSuffix(name, ":"+tag)):
		case tag == "" && digest == "":
		default:
			continue
		}
		found = append(found, d)
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) == 0 && digest != "":
		return v1.Descriptor{}, fmt.Errorf("no image %s: %w", digest, ErrNotFound)
	case len(found) == 0:
		return v1.Descriptor{}, fmt.Errorf("no image tagged %q: %w", tag, ErrNotFound)
	}
	return v1.Descriptor{}, fmt.Errorf("%d images, name one with :TAG or @DIGEST", len(found))
}

// layoutPlatform picks platform's manifest from an index blob of a layout.
func layoutPlatform(dir string, d v1.Descriptor, platform v1.Platform) (v1.Descriptor, error) {
	b, err := os.ReadFile(filepath.Join(dir, "blobs", d.Digest.Algorithm, d.Digest.Hex))
	if err != nil {
		return v1.Descriptor{}, err
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(b, &idx); err != nil {
		return v1.Descriptor{}, fmt.Errorf("parse index %s: %w", d.Digest, err)
	}
	for _, m := range idx.Manifests {
		if m.Platform != nil && m.Platform.OS == platform.OS && m.Platform.Architecture == platform.Architecture &&
			(platform.Variant == "" || m.Platform.Variant == platform.Variant) {
			return m, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("index %s has no image for %s: %w", d.Digest, formatPlatform(platform), ErrNotFound)
}
