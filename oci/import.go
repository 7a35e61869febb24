package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// containerdNameAnnotation is the full image name containerd and Docker put
// next to org.opencontainers.image.ref.name (which they set to the tag only).
const containerdNameAnnotation = "io.containerd.image.name"

// ImportOptions is a request to [Store.Import]; the zero value imports
// under the names the input carries.
type ImportOptions struct {
	// Tag also names the imported image (normalized by [ParseName]); the
	// input must then hold exactly one image.
	Tag string
}

// Import adds the images of path to the store: an OCI image layout
// directory, an OCI archive (a tar of a layout), or a `docker save`
// tarball, plain or gzip-compressed.
//
// Blobs are copied byte for byte, so an image keeps its manifest digest;
// a docker save tarball (legacy format) gets a Docker schema 2 manifest
// over its files as they are, with Docker media types and diff IDs
// checked. index.json entries become tags under io.containerd.image.name
// or a full org.opencontainers.image.ref.name; entries with neither, or
// with a bare tag such as "latest", are imported untagged (see
// [ImportOptions.Tag]).
//
// Import is all or nothing: every blob is copied to ingest/ and verified
// (digest, size, media types, references) before the first one is renamed
// into the store, and index.json is updated last, in one atomic write. On
// an error nothing is added. Only a crash between the renames and the
// index write can leave blobs no tag refers to; they are harmless and
// [Store.GC] removes them.
func (s *Store) Import(ctx context.Context, path string, opts ImportOptions) ([]ImageInfo, error) {
	infos, err := s.importPath(ctx, path, opts)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	return infos, nil
}

func (s *Store) importPath(ctx context.Context, path string, opts ImportOptions) ([]ImageInfo, error) {
	var tag string
	if opts.Tag != "" {
		var err error
		if tag, err = parseTagName(opts.Tag); err != nil {
			return nil, err
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	im := &importer{s: s, ctx: ctx, staged: map[v1.Hash]*Ingest{}}
	defer im.close()
	var roots []v1.Descriptor
	if fi.IsDir() {
		im.src = &dirSource{dir: path}
		roots, err = im.layoutRoots(func(name string) ([]byte, error) {
			return readFileLimit(filepath.Join(path, name), maxMetadata)
		})
	} else {
		roots, err = im.archiveRoots(path)
	}
	if err != nil {
		return nil, err
	}
	entries, err := im.verify(roots, tag)
	if err != nil {
		return nil, err
	}
	if err := im.commit(); err != nil {
		return nil, err
	}
	if err := s.updateIndex(ctx, func(idx *v1.IndexManifest) error {
		addEntries(idx, entries)
		return nil
	}); err != nil {
		return nil, err
	}
	infos := make([]ImageInfo, 0, len(entries))
	for _, e := range entries {
		info, err := s.imageInfo(ctx, e)
		if err != nil {
			return nil, err
		}
		infos = append(infos, info)
	}
	return infos, nil
}

// blobSource hands over the bytes of a blob an input refers to, as an
// Ingest the importer will verify and commit (and close).
type blobSource interface {
	stage(ctx context.Context, s *Store, d v1.Descriptor) (*Ingest, error)
}

// importer verifies an input's image graph into staged ingests, then
// commits them.
type importer struct {
	s      *Store
	ctx    context.Context
	src    blobSource
	staged map[v1.Hash]*Ingest
	order  []v1.Hash // staging order: parents before children
	extra  []*Ingest // ingests of the source nobody took, closed at the end
}

func (im *importer) close() {
	for _, ing := range im.staged {
		ing.Close()
	}
	for _, ing := range im.extra {
		ing.Close()
	}
}

// layoutRoots reads oci-layout and index.json of a layout (through read,
// which takes a path relative to the layout) and returns index.json's
// entries.
func (im *importer) layoutRoots(read func(string) ([]byte, error)) ([]v1.Descriptor, error) {
	b, err := read(ocispec.ImageLayoutFile)
	if err != nil {
		return nil, fmt.Errorf("read oci-layout: %w", err)
	}
	if err := checkLayoutVersion(b); err != nil {
		return nil, err
	}
	if b, err = read(ocispec.ImageIndexFile); err != nil {
		return nil, fmt.Errorf("read index.json: %w", err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("parse index.json: %w: %w", ErrInvalid, err)
	}
	if idx.SchemaVersion != 2 {
		return nil, fmt.Errorf("index.json: schemaVersion %d: %w", idx.SchemaVersion, ErrUnsupported)
	}
	return idx.Manifests, nil
}

// verify stages and checks everything roots reference and returns the
// index.json entries to add, with their names.
func (im *importer) verify(roots []v1.Descriptor, tag string) ([]v1.Descriptor, error) {
	if len(roots) == 0 {
		return nil, fmt.Errorf("no image in the input: %w", ErrNotFound)
	}
	var entries []v1.Descriptor
	digests := map[v1.Hash]bool{}
	for i, d := range roots {
		name, err := entryName(d)
		if err != nil {
			return nil, fmt.Errorf("index entry %d: %w", i+1, err)
		}
		if err := walkGraph(im.ctx, d, im.read, im.visit); err != nil {
			return nil, err
		}
		entries = append(entries, indexEntry(d, name))
		digests[d.Digest] = true
	}
	if tag != "" {
		if len(digests) != 1 {
			return nil, fmt.Errorf("a name for the image given, but the input holds %d images: %w", len(digests), ErrInvalid)
		}
		entries = append(entries, indexEntry(roots[0], tag))
	}
	return dropRedundant(entries), nil
}

// dropRedundant removes untagged entries of images that also get a name,
// and repeats.
func dropRedundant(entries []v1.Descriptor) []v1.Descriptor {
	named := map[v1.Hash]bool{}
	for _, e := range entries {
		if refName(e) != "" {
			named[e.Digest] = true
		}
	}
	seen := map[string]bool{}
	kept := entries[:0]
	for _, e := range entries {
		key := e.Digest.String() + " " + refName(e)
		if seen[key] || (refName(e) == "" && named[e.Digest]) {
			continue
		}
		seen[key] = true
		kept = append(kept, e)
	}
	return kept
}

// entryName is the store name of an input's index entry: the containerd
// annotation, or a ref.name that is a full reference; "" when the entry
// names no repository.
func entryName(d v1.Descriptor) (string, error) {
	n := d.Annotations[containerdNameAnnotation]
	if n == "" {
		n = refName(d)
		if !strings.ContainsAny(n, "/:@") {
			return "", nil // absent, or a bare tag like "latest"
		}
	}
	return parseTagName(n)
}

// read stages a manifest or index and returns its verified bytes.
func (im *importer) read(d v1.Descriptor) ([]byte, error) {
	kind, err := rootKind(d)
	if err != nil {
		return nil, err
	}
	if d.Size > maxMetadata {
		return nil, fmt.Errorf("%s %s: %d bytes: %w: too large", kind, d.Digest, d.Size, ErrInvalid)
	}
	if err := im.need(d, kind); err != nil {
		return nil, err
	}
	if ing, ok := im.staged[d.Digest]; ok {
		return io.ReadAll(ing.reader())
	}
	return im.s.readVerified(d)
}

func (im *importer) visit(d v1.Descriptor, kind blobKind, _ []byte, m *v1.Manifest) error {
	switch kind {
	case kindConfig:
		if d.Size > maxMetadata {
			return fmt.Errorf("config %s: %d bytes: %w: too large", d.Digest, d.Size, ErrInvalid)
		}
		if err := im.need(d, kind); err != nil {
			return err
		}
		var b []byte
		var err error
		if ing, ok := im.staged[d.Digest]; ok {
			b, err = io.ReadAll(ing.reader())
		} else {
			b, err = im.s.readVerified(d)
		}
		if err != nil {
			return err
		}
		_, err = parseConfig(b, m)
		return err
	case kindLayer:
		return im.need(d, kind)
	}
	return nil
}

// need makes sure blob d will be in the store: already there with the
// right size, or staged from the source and verified.
func (im *importer) need(d v1.Descriptor, kind blobKind) error {
	if ing, ok := im.staged[d.Digest]; ok {
		if ing.Size() != d.Size {
			return fmt.Errorf("%s %s: descriptor size %d, blob has %d bytes: %w", kind, d.Digest, d.Size, ing.Size(), ErrSizeMismatch)
		}
		return nil
	}
	if err := checkHash(d.Digest); err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	if size, err := im.s.blobSize(d.Digest); err == nil {
		if size != d.Size {
			return fmt.Errorf("%s %s: descriptor size %d, blob has %d bytes: %w", kind, d.Digest, d.Size, size, ErrSizeMismatch)
		}
		return nil
	}
	ing, err := im.src.stage(im.ctx, im.s, d)
	if err != nil {
		return fmt.Errorf("%s %s: %w", kind, d.Digest, err)
	}
	if err := ing.prepare(d.Digest, d.Size); err != nil {
		ing.Close()
		return fmt.Errorf("%s %w", kind, err)
	}
	im.staged[d.Digest] = ing
	im.order = append(im.order, d.Digest)
	return nil
}

// commit renames the staged blobs into the store, children before parents,
// and fsyncs the blob directory once.
func (im *importer) commit() error {
	for i := len(im.order) - 1; i >= 0; i-- {
		if err := im.staged[im.order[i]].publish(); err != nil {
			return err
		}
	}
	if err := syncDir(im.s.blobsDir()); err != nil {
		return fmt.Errorf("commit blobs: %w", err)
	}
	return nil
}

// dirSource reads blobs from an OCI layout directory.
type dirSource struct{ dir string }

var _ blobSource = (*dirSource)(nil)

func (src *dirSource) stage(ctx context.Context, s *Store, d v1.Descriptor) (_ *Ingest, err error) {
	f, err := os.Open(filepath.Join(src.dir, ocispec.ImageBlobsDir, d.Digest.Algorithm, d.Digest.Hex))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob missing from %s: %w", src.dir, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ing, err := s.NewIngest(ctx)
	if err != nil {
		return nil, err
	}
	// Copy one byte more than announced, so a longer file fails the size check.
	if _, err := io.Copy(ing, io.LimitReader(f, d.Size+1)); err != nil {
		ing.Close()
		return nil, fmt.Errorf("copy blob: %w", err)
	}
	return ing, nil
}

func readFileLimit(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: %w: larger than %d bytes", path, ErrInvalid, limit)
	}
	return b, nil
}
