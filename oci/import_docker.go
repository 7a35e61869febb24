package oci

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// dockerRoots turns a legacy docker save manifest.json into image roots:
// for each image a Docker schema 2 manifest over its config and layer
// files exactly as they are (an uncompressed layer stays
// application/vnd.docker.image.rootfs.diff.tar, like containerd's
// importer does), staged like any other blob.
//
// NOTE: go-containerregistry's tarball.Image would re-gzip uncompressed
// layers (twice: once for the digest, once for the bytes) and needs a
// seekable, uncompressed file; only its manifest.json types are used here.
func (im *importer) dockerRoots(a *archive) ([]v1.Descriptor, error) {
	var manifest tarball.Manifest
	if err := json.Unmarshal(a.meta["manifest.json"], &manifest); err != nil {
		return nil, fmt.Errorf("parse manifest.json: %w: %w", ErrInvalid, err)
	}
	var roots []v1.Descriptor
	for i, e := range manifest {
		d, err := im.dockerImage(a, e)
		if err != nil {
			return nil, fmt.Errorf("manifest.json image %d: %w", i+1, err)
		}
		if len(e.RepoTags) == 0 {
			roots = append(roots, d)
		}
		for _, t := range e.RepoTags {
			td := d
			td.Annotations = map[string]string{containerdNameAnnotation: t}
			roots = append(roots, td)
		}
	}
	return roots, nil
}

func (im *importer) dockerImage(a *archive, e tarball.Descriptor) (v1.Descriptor, error) {
	if len(e.LayerSources) > 0 {
		return v1.Descriptor{}, fmt.Errorf("foreign layers: %w", ErrUnsupported)
	}
	cfgIng, ok := a.file(e.Config)
	if !ok {
		return v1.Descriptor{}, fmt.Errorf("config %s missing from archive: %w", e.Config, ErrNotFound)
	}
	raw, err := io.ReadAll(io.LimitReader(cfgIng.reader(), maxMetadata))
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("read config %s: %w", e.Config, err)
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return v1.Descriptor{}, fmt.Errorf("parse config %s: %w: %w", e.Config, ErrInvalid, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(e.Layers) {
		return v1.Descriptor{}, fmt.Errorf("config %s: %d diff IDs for %d layers: %w", e.Config, len(cfg.RootFS.DiffIDs), len(e.Layers), ErrInvalid)
	}
	a.byDigest[cfgIng.Digest()] = cfgIng
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.DockerManifestSchema2,
		Config:        v1.Descriptor{MediaType: types.DockerConfigJSON, Size: cfgIng.Size(), Digest: cfgIng.Digest()},
		Layers:        []v1.Descriptor{},
	}
	for i, p := range e.Layers {
		ing, ok := a.file(p)
		if !ok {
			return v1.Descriptor{}, fmt.Errorf("layer %d (%s) missing from archive: %w", i+1, p, ErrNotFound)
		}
		mt, diffID, err := dockerLayer(ing)
		if err != nil {
			return v1.Descriptor{}, fmt.Errorf("layer %d (%s): %w", i+1, p, err)
		}
		if diffID != cfg.RootFS.DiffIDs[i] {
			return v1.Descriptor{}, fmt.Errorf("layer %d (%s): content has diff ID %s, config says %s: %w", i+1, p, diffID, cfg.RootFS.DiffIDs[i], ErrDigestMismatch)
		}
		a.byDigest[ing.Digest()] = ing
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: mt, Size: ing.Size(), Digest: ing.Digest()})
	}
	raw, err = json.Marshal(m)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("encode manifest: %w", err)
	}
	mi, err := im.s.NewIngest(im.ctx)
	if err != nil {
		return v1.Descriptor{}, err
	}
	a.all = append(a.all, mi)
	if _, err := mi.Write(raw); err != nil {
		return v1.Descriptor{}, fmt.Errorf("write manifest: %w", err)
	}
	a.byDigest[mi.Digest()] = mi
	return v1.Descriptor{MediaType: types.DockerManifestSchema2, Size: mi.Size(), Digest: mi.Digest()}, nil
}

// dockerLayer tells a layer file's media type from its first bytes and
// computes its diff ID (the digest of the uncompressed tar).
func dockerLayer(ing *Ingest) (types.MediaType, v1.Hash, error) {
	var magic [4]byte
	n, _ := ing.reader().ReadAt(magic[:], 0)
	switch {
	case bytes.HasPrefix(magic[:n], []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(ing.reader())
		if err != nil {
			return "", v1.Hash{}, fmt.Errorf("read gzip layer: %w", err)
		}
		h := sha256.New()
		if _, err := io.Copy(h, zr); err != nil {
			return "", v1.Hash{}, fmt.Errorf("read gzip layer: %w", err)
		}
		return types.DockerLayer, v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, nil
	case bytes.HasPrefix(magic[:n], []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "", v1.Hash{}, fmt.Errorf("zstd layer in a docker save tarball: %w", ErrUnsupported)
	}
	return types.DockerUncompressedLayer, ing.Digest(), nil
}
