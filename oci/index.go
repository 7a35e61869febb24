package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// refName is the tag an index.json entry carries ("" if untagged).
func refName(d v1.Descriptor) string {
	return d.Annotations[ocispec.AnnotationRefName]
}

// readIndex reads index.json. Writers replace it by rename, so readers
// need no lock and always see a complete file.
func (s *Store) readIndex() (*v1.IndexManifest, error) {
	b, err := os.ReadFile(s.indexPath())
	if err != nil {
		return nil, fmt.Errorf("read index.json: %w", err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("parse index.json: %w: %w", ErrInvalid, err)
	}
	return &idx, nil
}

// updateIndex applies fn to index.json under the exclusive index lock and
// replaces the file atomically (temp, fsync, rename, fsync dir). If fn
// fails, nothing is written.
func (s *Store) updateIndex(ctx context.Context, fn func(*v1.IndexManifest) error) error {
	lf, err := os.OpenFile(filepath.Join(s.root, indexLockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("update index.json: %w", err)
	}
	defer lf.Close() // drops the lock, after the rename
	if err := waitLock(ctx, lf, lockExclusive, s.log, lf.Name()); err != nil {
		return fmt.Errorf("update index.json: %w", err)
	}
	idx, err := s.readIndex()
	if errors.Is(err, fs.ErrNotExist) {
		idx, err = &v1.IndexManifest{}, nil
	}
	if err != nil {
		return err
	}
	if err := fn(idx); err != nil {
		return err
	}
	idx.SchemaVersion = 2
	idx.MediaType = types.OCIImageIndex
	if idx.Manifests == nil {
		idx.Manifests = []v1.Descriptor{} // "manifests": [] is required, null is not valid
	}
	data, err := json.Marshal(idx)
	if err != nil {
		return fmt.Errorf("encode index.json: %w", err)
	}
	return s.writeFileAtomic(s.indexPath(), data)
}

// indexEntry is the index.json entry for desc under name ("" for an
// untagged image kept as a root).
func indexEntry(desc v1.Descriptor, name string) v1.Descriptor {
	e := v1.Descriptor{MediaType: desc.MediaType, Size: desc.Size, Digest: desc.Digest, Platform: desc.Platform}
	for k, v := range desc.Annotations {
		if k != ocispec.AnnotationRefName && k != containerdNameAnnotation {
			if e.Annotations == nil {
				e.Annotations = map[string]string{}
			}
			e.Annotations[k] = v
		}
	}
	if name != "" {
		if e.Annotations == nil {
			e.Annotations = map[string]string{}
		}
		e.Annotations[ocispec.AnnotationRefName] = name
	}
	return e
}

// addEntries puts entries into idx: a named entry replaces the entry of the
// same name and makes untagged entries of its digest redundant; an untagged
// one is added only if nothing refers to its digest yet.
func addEntries(idx *v1.IndexManifest, entries []v1.Descriptor) {
	for _, e := range entries {
		n := refName(e)
		if n == "" {
			if !hasDigest(idx.Manifests, e.Digest) {
				idx.Manifests = append(idx.Manifests, e)
			}
			continue
		}
		kept := idx.Manifests[:0]
		for _, m := range idx.Manifests {
			if refName(m) == n || (refName(m) == "" && m.Digest == e.Digest) {
				continue
			}
			kept = append(kept, m)
		}
		idx.Manifests = append(kept, e)
	}
}

func hasDigest(ms []v1.Descriptor, h v1.Hash) bool {
	for _, m := range ms {
		if m.Digest == h {
			return true
		}
	}
	return false
}

// checkRoot checks that desc can be an index.json entry: a manifest or an
// index that is in the store with the size desc claims.
func (s *Store) checkRoot(desc v1.Descriptor) error {
	if _, err := rootKind(desc); err != nil {
		return err
	}
	size, err := s.blobSize(desc.Digest)
	if err != nil {
		return err
	}
	if size != desc.Size {
		return fmt.Errorf("%s: descriptor size %d, blob has %d bytes: %w", desc.Digest, desc.Size, size, ErrSizeMismatch)
	}
	return nil
}

// Tag points name (normalized by [ParseName]; tags only) at desc, a
// manifest or index already in the store, replacing what the name pointed
// at before. index.json is replaced atomically under its lock, so
// concurrent Tags from any number of processes all land.
func (s *Store) Tag(ctx context.Context, name string, desc v1.Descriptor) error {
	n, err := parseTagName(name)
	if err != nil {
		return fmt.Errorf("tag: %w", err)
	}
	if err := s.checkRoot(desc); err != nil {
		return fmt.Errorf("tag %s: %w", n, err)
	}
	return s.updateIndex(ctx, func(idx *v1.IndexManifest) error {
		addEntries(idx, []v1.Descriptor{indexEntry(desc, n)})
		return nil
	})
}

// Untag removes the tag name. The image's blobs stay until [Store.GC].
// A name that is not a tag is [ErrNotFound].
func (s *Store) Untag(name string) error {
	n, err := parseTagName(name)
	if err != nil {
		return fmt.Errorf("untag: %w", err)
	}
	return s.updateIndex(context.Background(), func(idx *v1.IndexManifest) error {
		before := len(idx.Manifests)
		idx.Manifests = removeEntries(idx.Manifests, func(d v1.Descriptor) bool { return refName(d) == n })
		if len(idx.Manifests) == before {
			return fmt.Errorf("untag %s: %w", n, ErrNotFound)
		}
		return nil
	})
}

// RemoveImage removes ref from index.json: a tag removes that tag; a digest
// or short ID removes every entry of that image, tagged or not. It returns
// the names removed ("" for an untagged entry). Blobs stay until [Store.GC].
func (s *Store) RemoveImage(ctx context.Context, ref string) ([]string, error) {
	if n, err := parseTagName(ref); err == nil && !isIDLike(ref) {
		err := s.updateIndex(ctx, func(idx *v1.IndexManifest) error {
			before := len(idx.Manifests)
			idx.Manifests = removeEntries(idx.Manifests, func(d v1.Descriptor) bool { return refName(d) == n })
			if len(idx.Manifests) == before {
				return ErrNotFound
			}
			return nil
		})
		if err == nil {
			return []string{n}, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	desc, err := s.Resolve(ref)
	if err != nil {
		return nil, fmt.Errorf("remove image: %w", err)
	}
	var names []string
	err = s.updateIndex(ctx, func(idx *v1.IndexManifest) error {
		names = nil
		idx.Manifests = removeEntries(idx.Manifests, func(d v1.Descriptor) bool {
			if d.Digest == desc.Digest {
				names = append(names, refName(d))
				return true
			}
			return false
		})
		if len(names) == 0 {
			return fmt.Errorf("remove image %s: %w", ref, ErrNotFound)
		}
		return nil
	})
	return names, err
}

// isIDLike reports refs that are certainly IDs, not names: those with a
// "sha256:" prefix or an "@".
func isIDLike(ref string) bool {
	return strings.HasPrefix(ref, "sha256:") || strings.Contains(ref, "@")
}

func removeEntries(ms []v1.Descriptor, drop func(v1.Descriptor) bool) []v1.Descriptor {
	kept := make([]v1.Descriptor, 0, len(ms))
	for _, m := range ms {
		if !drop(m) {
			kept = append(kept, m)
		}
	}
	return kept
}

// Resolve finds the image ref names. It accepts, in this order: a digest
// ("sha256:<hex>" or "NAME@sha256:<hex>", found in index.json or among the
// blobs), a name (normalized by [ParseName]) tagged in index.json, and a
// unique prefix of the hex digest of an index.json entry (like Docker's
// short IDs). The descriptor comes back with its index.json annotations.
// Errors wrap [ErrNotFound], [ErrAmbiguous] or [ErrInvalid].
func (s *Store) Resolve(ref string) (v1.Descriptor, error) {
	idx, err := s.readIndex()
	if err != nil {
		return v1.Descriptor{}, err
	}
	h, ok, err := parseDigestRef(ref)
	if err != nil {
		return v1.Descriptor{}, err
	}
	if ok {
		return s.describe(idx, h)
	}
	if n, err := ParseName(ref); err == nil {
		for _, d := range idx.Manifests {
			if refName(d) == n {
				return d, nil
			}
		}
	}
	if p, ok := hexPrefix(ref); ok {
		var found []v1.Descriptor
		for _, d := range idx.Manifests {
			if strings.HasPrefix(d.Digest.Hex, p) && !hasDigest(found, d.Digest) {
				found = append(found, d)
			}
		}
		switch len(found) {
		case 1:
			return found[0], nil
		case 0:
		default:
			return v1.Descriptor{}, fmt.Errorf("image %s: %w: %d images match", ref, ErrAmbiguous, len(found))
		}
	}
	return v1.Descriptor{}, fmt.Errorf("image %s: %w", ref, ErrNotFound)
}

// describe is the descriptor of the manifest or index h: its index.json
// entry, or else one built from the blob.
func (s *Store) describe(idx *v1.IndexManifest, h v1.Hash) (v1.Descriptor, error) {
	for _, d := range idx.Manifests {
		if d.Digest == h {
			return d, nil
		}
	}
	b, err := s.readBlob(h, maxMetadata)
	if errors.Is(err, ErrNotFound) {
		return v1.Descriptor{}, fmt.Errorf("image %s: %w", h, ErrNotFound)
	}
	if err != nil {
		return v1.Descriptor{}, err
	}
	d := v1.Descriptor{MediaType: sniffMediaType(b), Size: int64(len(b)), Digest: h}
	if _, err := rootKind(d); err != nil {
		return v1.Descriptor{}, fmt.Errorf("image %s: not a manifest or index: %w", h, ErrInvalid)
	}
	return d, nil
}

// sniffMediaType guesses the media type of a manifest or index that does not
// come with a descriptor: its mediaType field, or OCI's by shape.
func sniffMediaType(b []byte) types.MediaType {
	var probe struct {
		MediaType types.MediaType `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
		Config    json.RawMessage `json:"config"`
	}
	if json.Unmarshal(b, &probe) != nil {
		return ""
	}
	switch {
	case probe.MediaType != "":
		return probe.MediaType
	case probe.Manifests != nil:
		return types.OCIImageIndex
	case probe.Config != nil:
		return types.OCIManifestSchema1
	}
	return ""
}
