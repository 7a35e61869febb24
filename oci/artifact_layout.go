package oci

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// The same artifacts in an OCI image layout directory, for
// `--cache-to type=local,dest=DIR` and `--cache-from type=local,src=DIR`.
// The directory stays a valid layout any OCI tool reads: blobs appear
// complete (temp file, fsync, rename), index.json is replaced atomically
// under an flock on the directory.

// layoutTag is the tag an artifact gets in a layout when none is given.
const layoutTag = "latest"

// PushArtifactLayout writes the artifact spec into the OCI image layout
// dir (created if needed) and points tag ("" means "latest") at it in
// dir's index.json, replacing what that tag named; other tags stay. Blobs
// the layout has are not written again; the others are copied from the
// store, or streamed from a registry for blobs only known remotely, and
// verified. Afterwards the blobs are recorded as available in "oci:DIR".
func (s *Store) PushArtifactLayout(ctx context.Context, dir, tag string, spec ArtifactSpec, opts PushOptions) (v1.Descriptor, error) {
	if tag == "" {
		tag = layoutTag
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("push artifact to %s: %w", dir, err)
	}
	d, err := s.pushLayout(ctx, abs, tag, spec, opts)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("push artifact to %s: %w", abs, err)
	}
	return d, nil
}

func (s *Store) pushLayout(ctx context.Context, dir, tag string, spec ArtifactSpec, opts PushOptions) (v1.Descriptor, error) {
	m, config, err := artifactManifest(spec)
	if err != nil {
		return v1.Descriptor{}, err
	}
	items, err := s.artifactItems(spec)
	if err != nil {
		return v1.Descriptor{}, err
	}
	if err := ensureLayout(dir); err != nil {
		return v1.Descriptor{}, err
	}
	w := &layoutWriter{s: s, dir: dir, rep: newReporter(opts.Progress), opts: opts}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobsOr(opts.Jobs))
	for _, it := range append(items, config) {
		g.Go(func() error { return w.blob(gctx, it) })
	}
	if err := g.Wait(); err != nil {
		return v1.Descriptor{}, err
	}
	if err := w.blob(ctx, pushItem{d: m.d, object: "manifest", data: m.raw}); err != nil {
		return v1.Descriptor{}, err
	}
	if err := syncDir(filepath.Join(dir, ocispec.ImageBlobsDir, "sha256")); err != nil {
		return v1.Descriptor{}, err
	}
	entry := m.d
	entry.Annotations = map[string]string{ocispec.AnnotationRefName: tag}
	if err := s.tagLayout(ctx, dir, entry); err != nil {
		return v1.Descriptor{}, err
	}
	if err := s.AddBlobSource(ctx, LayoutSourcePrefix+dir, spec.Blobs...); err != nil {
		return v1.Descriptor{}, err
	}
	return m.d, nil
}

// ensureLayout creates dir as an empty OCI layout, or checks the version
// of the one there.
func ensureLayout(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, ocispec.ImageBlobsDir, "sha256"), 0o755); err != nil {
		return err
	}
	p := filepath.Join(dir, ocispec.ImageLayoutFile)
	b, err := os.ReadFile(p)
	if err == nil {
		return checkLayoutVersion(b)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	b, _ = json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	return writeLayoutFile(dir, p, b)
}

// layoutWriter writes blobs into a layout.
type layoutWriter struct {
	s    *Store
	dir  string
	rep  *reporter
	opts PushOptions
}

// blob writes it into the layout unless it is there with the right size:
// temp file in dir, verified, fsynced, renamed (the caller fsyncs the
// blob directory).
func (w *layoutWriter) blob(ctx context.Context, it pushItem) (err error) {
	d := it.d
	p := filepath.Join(w.dir, ocispec.ImageBlobsDir, "sha256", d.Digest.Hex)
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Size() == d.Size {
		w.rep.report(BlobProgress{Digest: d.Digest, MediaType: d.MediaType, Size: d.Size, Done: d.Size, Status: BlobExists})
		return nil
	}
	rc, err := w.s.openItem(ctx, it, w.opts.logger())
	if err != nil {
		return fmt.Errorf("%s %s: %w", it.object, d.Digest, err)
	}
	defer rc.Close()
	f, err := os.CreateTemp(w.dir, ".minibuild-blob-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
		}
		err = errors.Join(err, f.Close())
	}()
	pr := newProgressReader(rc, w.rep, d)
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(pr, d.Size+1))
	if err != nil {
		return fmt.Errorf("%s %s: %w", it.object, d.Digest, err)
	}
	if n != d.Size {
		return fmt.Errorf("%s %s: got %d bytes, want %d: %w", it.object, d.Digest, n, d.Size, ErrSizeMismatch)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.Digest.Hex {
		return fmt.Errorf("%s %s: content is sha256:%s: %w", it.object, d.Digest, got, ErrDigestMismatch)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return err
	}
	pr.done()
	return nil
}

// openItem opens the bytes of a blob to push: the data given, the store's
// blob, or a stream from one of its sources. Readers verify at EOF.
func (s *Store) openItem(ctx context.Context, it pushItem, log *slog.Logger) (io.ReadCloser, error) {
	switch {
	case it.data != nil:
		return io.NopCloser(bytes.NewReader(it.data)), nil
	case s.HasBlob(it.d.Digest):
		return s.OpenBlob(it.d.Digest)
	}
	return s.openRemote(ctx, it.d, log)
}

// tagLayout points entry's ref.name at entry in dir's index.json, under
// an exclusive flock on dir (concurrent writers of one layout each land).
func (s *Store) tagLayout(ctx context.Context, dir string, entry v1.Descriptor) error {
	df, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer df.Close() // drops the lock, after the rename
	if err := waitLock(ctx, df, lockExclusive, s.log, dir); err != nil {
		return err
	}
	idx, err := readLayoutIndex(dir)
	if errors.Is(err, fs.ErrNotExist) {
		idx, err = &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}, nil
	}
	if err != nil {
		return err
	}
	tag := refName(entry)
	idx.Manifests = removeEntries(idx.Manifests, func(d v1.Descriptor) bool { return refName(d) == tag })
	idx.Manifests = append(idx.Manifests, entry)
	b, err := json.Marshal(idx)
	if err != nil {
		return fmt.Errorf("encode index.json: %w", err)
	}
	return writeLayoutFile(dir, filepath.Join(dir, ocispec.ImageIndexFile), b)
}

func readLayoutIndex(dir string) (*v1.IndexManifest, error) {
	b, err := readFileLimit(filepath.Join(dir, ocispec.ImageIndexFile), maxMetadata)
	if err != nil {
		return nil, err
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("parse %s: %w: %w", filepath.Join(dir, ocispec.ImageIndexFile), ErrInvalid, err)
	}
	return &idx, nil
}

// writeLayoutFile replaces path (in dir) with data: temp file in dir,
// fsync, rename, fsync dir.
func writeLayoutFile(dir, path string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, ".minibuild-file-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
		}
		err = errors.Join(err, f.Close())
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// FetchArtifactLayout reads the artifact tagged tag ("" means "latest")
// in the OCI image layout dir: manifest and config, verified, not the
// blobs, which are recorded as available in "oci:DIR"
// ([Store.AddBlobSource]). A missing tag wraps [ErrNotFound].
func (s *Store) FetchArtifactLayout(ctx context.Context, dir, tag string) (Artifact, error) {
	if tag == "" {
		tag = layoutTag
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Artifact{}, fmt.Errorf("fetch artifact from %s: %w", dir, err)
	}
	a, err := s.fetchLayout(ctx, abs, tag)
	if err != nil {
		return Artifact{}, fmt.Errorf("fetch artifact %s from %s: %w", tag, abs, err)
	}
	return a, nil
}

func (s *Store) fetchLayout(ctx context.Context, dir, tag string) (Artifact, error) {
	b, err := os.ReadFile(filepath.Join(dir, ocispec.ImageLayoutFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Artifact{}, fmt.Errorf("not an OCI layout: %w", ErrNotFound)
	}
	if err != nil {
		return Artifact{}, err
	}
	if err := checkLayoutVersion(b); err != nil {
		return Artifact{}, err
	}
	idx, err := readLayoutIndex(dir)
	if err != nil {
		return Artifact{}, err
	}
	var entry *v1.Descriptor
	for i, d := range idx.Manifests {
		if refName(d) == tag {
			entry = &idx.Manifests[i]
		}
	}
	if entry == nil {
		return Artifact{}, fmt.Errorf("no artifact tagged %q: %w", tag, ErrNotFound)
	}
	md := v1.Descriptor{MediaType: entry.MediaType, Size: entry.Size, Digest: entry.Digest}
	raw, err := readLayoutBlob(dir, md)
	if err != nil {
		return Artifact{}, fmt.Errorf("manifest %w", err)
	}
	a, err := parseArtifact(md, raw)
	if err != nil {
		return Artifact{}, fmt.Errorf("manifest %s: %w", md.Digest, err)
	}
	if a.Config, err = readLayoutBlob(dir, a.configDesc); err != nil {
		return Artifact{}, fmt.Errorf("config %w", err)
	}
	a.Source = LayoutSourcePrefix + dir
	if err := s.AddBlobSource(ctx, a.Source, a.Blobs...); err != nil {
		return Artifact{}, err
	}
	return a.Artifact, nil
}

// readLayoutBlob reads a metadata blob of a layout, verified.
func readLayoutBlob(dir string, d v1.Descriptor) ([]byte, error) {
	if err := checkHash(d.Digest); err != nil {
		return nil, err
	}
	if d.Size < 0 || d.Size > maxMetadata {
		return nil, fmt.Errorf("%s: %d bytes: %w", d.Digest, d.Size, ErrInvalid)
	}
	f, err := os.Open(filepath.Join(dir, ocispec.ImageBlobsDir, "sha256", d.Digest.Hex))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", d.Digest, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := readAllVerified(f, d)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.Digest, err)
	}
	return b, nil
}
