package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Artifacts are generic transport for whoever owns their format (the
// build cache): an OCI image manifest whose config is the owner's
// document and whose layers are arbitrary blobs referenced by digest
// (OCI image-spec 1.1, "Guidelines for Artifact Usage").

// EmptyConfigMediaType is the OCI empty descriptor's media type, the
// config of an artifact that has none ("{}").
const EmptyConfigMediaType types.MediaType = "application/vnd.oci.empty.v1+json"

// ArtifactSpec describes an artifact to push. Its zero value is invalid:
// an artifact needs a ConfigMediaType and Config, or an ArtifactType.
type ArtifactSpec struct {
	// ArtifactType is the manifest's artifactType; "" leaves it out, and
	// the config media type says what the artifact is.
	ArtifactType string
	// ConfigMediaType and Config are the config blob, such as
	// "application/vnd.minibuild.cache.v1+json" and its JSON. A nil Config
	// is the OCI empty config, and needs an ArtifactType.
	ConfigMediaType types.MediaType
	Config          []byte
	// Blobs are the manifest's layers: blobs in the store or known
	// remotely ([Store.AddBlobSource]), any media type, in order.
	Blobs []v1.Descriptor
	// Annotations go on the manifest.
	Annotations map[string]string
}

// Artifact is an artifact read back by [Store.FetchArtifact] or
// [Store.FetchArtifactLayout]: its manifest and config, not its blobs.
type Artifact struct {
	Descriptor      v1.Descriptor // of the manifest
	ArtifactType    string        // the manifest's artifactType, else the config media type
	ConfigMediaType types.MediaType
	Config          []byte
	Blobs           []v1.Descriptor // the layers, as listed
	Annotations     map[string]string
	// Source is where the blobs are: the normalized repository, or
	// "oci:DIR". FetchArtifact records it as their source, so
	// [Store.FetchBlob] gets them when needed and a push to the same
	// registry mounts them.
	Source string
}

// artifactManifest builds the manifest of spec and the item of its config.
func artifactManifest(spec ArtifactSpec) (manifestBlob, pushItem, error) {
	cfg, mt := spec.Config, spec.ConfigMediaType
	if cfg == nil {
		if spec.ArtifactType == "" {
			return manifestBlob{}, pushItem{}, fmt.Errorf("artifact: %w: no config and no artifact type", ErrInvalid)
		}
		cfg, mt = []byte("{}"), EmptyConfigMediaType
	}
	if mt == "" {
		return manifestBlob{}, pushItem{}, fmt.Errorf("artifact: %w: config without a media type", ErrInvalid)
	}
	for i, b := range spec.Blobs {
		if err := checkHash(b.Digest); err != nil {
			return manifestBlob{}, pushItem{}, fmt.Errorf("artifact: blob %d: %w", i+1, err)
		}
		if b.MediaType == "" || b.Size < 0 {
			return manifestBlob{}, pushItem{}, fmt.Errorf("artifact: blob %d (%s): %w: needs a media type and a size", i+1, b.Digest, ErrInvalid)
		}
	}
	cd, _, _ := v1.SHA256(bytes.NewReader(cfg))
	config := pushItem{d: v1.Descriptor{MediaType: mt, Size: int64(len(cfg)), Digest: cd}, object: "config", data: cfg}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  spec.ArtifactType,
		Config:        config.d,
		Layers:        append([]v1.Descriptor{}, spec.Blobs...),
		Annotations:   spec.Annotations,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return manifestBlob{}, pushItem{}, fmt.Errorf("encode artifact manifest: %w", err)
	}
	md, _, _ := v1.SHA256(bytes.NewReader(raw))
	return manifestBlob{d: v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: int64(len(raw)), Digest: md, ArtifactType: spec.ArtifactType}, raw: raw}, config, nil
}

// artifactItems are the blobs of spec to push; each must be in the store
// or known remotely.
func (s *Store) artifactItems(spec ArtifactSpec) ([]pushItem, error) {
	items := make([]pushItem, 0, len(spec.Blobs))
	seen := map[v1.Hash]bool{}
	for _, b := range spec.Blobs {
		if seen[b.Digest] {
			continue
		}
		seen[b.Digest] = true
		if !s.HasBlob(b.Digest) {
			if _, ok, err := s.RemoteBlob(b.Digest); err != nil || !ok {
				return nil, errors.Join(err, fmt.Errorf("blob %s: %w: neither in the store nor known in a registry", b.Digest, ErrNotFound))
			}
		}
		items = append(items, pushItem{d: b, object: "blob"})
	}
	return items, nil
}

// PushArtifact pushes the artifact spec to ref, a tag (normalized by
// [ParseName]), and returns the manifest's descriptor. Blobs move like
// [Store.Push]'s: only those the repository lacks, mounted from another
// repository of the registry when one is known to have them, a blob only
// known remotely streamed from its source; the manifest goes last.
// Afterwards the blobs are recorded as available in ref's repository.
func (s *Store) PushArtifact(ctx context.Context, ref string, spec ArtifactSpec, opts PushOptions) (v1.Descriptor, error) {
	n, err := parseTagName(ref)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("push artifact: %w", err)
	}
	r, err := s.remote.reference(n)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("push artifact: %w", err)
	}
	m, config, err := artifactManifest(spec)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("push artifact %s: %w", n, err)
	}
	items, err := s.artifactItems(spec)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("push artifact %s: %w", n, err)
	}
	u, err := s.newUploader(ctx, r.Context(), n, opts)
	if err != nil {
		return v1.Descriptor{}, err
	}
	if err := u.blobs(ctx, append(items, config)); err != nil {
		return v1.Descriptor{}, err
	}
	if err := u.putManifest(ctx, r, m); err != nil {
		return v1.Descriptor{}, err
	}
	if err := s.AddBlobSource(ctx, u.repoStr, spec.Blobs...); err != nil {
		return v1.Descriptor{}, fmt.Errorf("push artifact %s: %w", n, err)
	}
	return m.d, nil
}

// FetchArtifact reads the artifact ref (a tag or digest reference) from
// its registry: the manifest and the config, verified, but none of the
// blobs. The blobs (and the config) are recorded as available in the
// repository ([Store.AddBlobSource]), so [Store.FetchBlob] can get each
// one later and a push to the same registry mounts them.
// Registry failures are *RemoteError ([ErrNotFound] for a missing
// artifact).
func (s *Store) FetchArtifact(ctx context.Context, ref string) (Artifact, error) {
	n, err := ParseName(ref)
	if err != nil {
		return Artifact{}, fmt.Errorf("fetch artifact: %w", err)
	}
	r, err := s.remote.reference(n)
	if err != nil {
		return Artifact{}, fmt.Errorf("fetch artifact: %w", err)
	}
	fail := func(object string, d v1.Hash, err error) error {
		return remoteErr("fetch artifact", n, r.Context(), object, d, err)
	}
	p, err := remote.NewPuller(s.remote.options(ctx, 1)...)
	if err != nil {
		return Artifact{}, fail("", v1.Hash{}, err)
	}
	got, err := p.Get(ctx, r)
	if err != nil {
		return Artifact{}, fail("manifest", v1.Hash{}, err)
	}
	md := v1.Descriptor{MediaType: got.MediaType, Size: got.Size, Digest: got.Digest}
	a, err := parseArtifact(md, got.Manifest)
	if err != nil {
		return Artifact{}, fail("manifest", md.Digest, err)
	}
	if a.Config, err = s.fetchSmallBlob(ctx, p, r.Context(), a.configDesc); err != nil {
		return Artifact{}, fail("config", a.configDesc.Digest, err)
	}
	a.Source = repoName(r.Context())
	if err := s.AddBlobSource(ctx, a.Source, append([]v1.Descriptor{a.configDesc}, a.Blobs...)...); err != nil {
		return Artifact{}, fmt.Errorf("fetch artifact %s: %w", n, err)
	}
	return a.Artifact, nil
}

// parsedArtifact is an Artifact with its config descriptor, before the
// config is read.
type parsedArtifact struct {
	Artifact
	configDesc v1.Descriptor
}

// parseArtifact parses an artifact's manifest.
func parseArtifact(md v1.Descriptor, raw []byte) (parsedArtifact, error) {
	if md.MediaType != types.OCIManifestSchema1 && md.MediaType != types.DockerManifestSchema2 {
		return parsedArtifact{}, fmt.Errorf("media type %q: %w: not an OCI image manifest", md.MediaType, ErrUnsupported)
	}
	if err := checkHeader(raw, md, kindManifest); err != nil {
		return parsedArtifact{}, err
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return parsedArtifact{}, fmt.Errorf("parse manifest: %w: %w", ErrInvalid, err)
	}
	if err := checkHash(m.Config.Digest); err != nil {
		return parsedArtifact{}, fmt.Errorf("config: %w", err)
	}
	if m.Config.Size > maxMetadata || m.Config.Size < 0 {
		return parsedArtifact{}, fmt.Errorf("config %s: %d bytes: %w", m.Config.Digest, m.Config.Size, ErrInvalid)
	}
	for i, l := range m.Layers {
		if err := checkHash(l.Digest); err != nil {
			return parsedArtifact{}, fmt.Errorf("blob %d: %w", i+1, err)
		}
	}
	at := m.ArtifactType
	if at == "" {
		at = string(m.Config.MediaType)
	}
	md.ArtifactType = at
	return parsedArtifact{
		Artifact: Artifact{Descriptor: md, ArtifactType: at, ConfigMediaType: m.Config.MediaType,
			Blobs: m.Layers, Annotations: m.Annotations},
		configDesc: m.Config,
	}, nil
}

// fetchSmallBlob reads a metadata blob d into memory through p, verified,
// retrying a transfer that breaks.
func (s *Store) fetchSmallBlob(ctx context.Context, p *remote.Puller, repo name.Repository, d v1.Descriptor) ([]byte, error) {
	var b []byte
	err := s.remote.retryBody(ctx, nil, func() error {
		l, err := p.Layer(ctx, repo.Digest(d.Digest.String()))
		if err != nil {
			return err
		}
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		defer rc.Close()
		b, err = readAllVerified(rc, d)
		return err
	})
	return b, err
}

// readAllVerified reads blob d, at most d.Size bytes of it, and checks
// size and digest with the store's sentinels.
func readAllVerified(r io.Reader, d v1.Descriptor) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, d.Size+1))
	if int64(len(b)) == d.Size {
		if got, _, _ := v1.SHA256(bytes.NewReader(b)); got != d.Digest {
			return nil, fmt.Errorf("content is %s: %w", got, ErrDigestMismatch)
		}
	}
	if err != nil {
		return nil, err
	}
	if n := int64(len(b)); n != d.Size {
		if n > d.Size {
			return nil, fmt.Errorf("blob %s: more than the %d bytes announced: %w", d.Digest, d.Size, ErrSizeMismatch)
		}
		return nil, fmt.Errorf("blob %s: %d bytes, want %d: %w", d.Digest, n, d.Size, ErrSizeMismatch)
	}
	return b, nil
}
