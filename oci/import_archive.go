package oci

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// archive is a tar input after one streaming pass: small metadata files in
// memory, every other regular file staged in an Ingest (digest known),
// links recorded. One pass means one copy, whatever order the entries
// come in, and plain or gzip-compressed input alike.
type archive struct {
	path     string
	meta     map[string][]byte
	files    map[string]*Ingest
	links    map[string]string
	byDigest map[v1.Hash]*Ingest // blobs found by content (docker save)
	all      []*Ingest
}

var _ blobSource = (*archive)(nil)

// metaFiles are read into memory: the layout and docker save metadata.
var metaFiles = map[string]bool{
	ocispec.ImageLayoutFile: true,
	ocispec.ImageIndexFile:  true,
	"manifest.json":         true,
	"repositories":          true,
}

// archiveRoots scans the archive at path and returns its images: the
// entries of index.json for an OCI archive (or a docker save tarball that
// carries a layout, as Docker 25+ writes), else manifests made from a
// legacy docker save manifest.json.
func (im *importer) archiveRoots(p string) ([]v1.Descriptor, error) {
	a := &archive{path: p, meta: map[string][]byte{}, files: map[string]*Ingest{},
		links: map[string]string{}, byDigest: map[v1.Hash]*Ingest{}}
	im.src = a
	defer func() { im.extra = append(im.extra, a.all...) }()
	if err := a.scan(im.ctx, im.s); err != nil {
		return nil, err
	}
	if _, ok := a.meta[ocispec.ImageLayoutFile]; ok {
		return im.layoutRoots(a.readMeta)
	}
	if _, ok := a.meta["manifest.json"]; ok {
		return im.dockerRoots(a)
	}
	return nil, fmt.Errorf("not an OCI layout, OCI archive or docker save tarball (no oci-layout or manifest.json): %w", ErrUnsupported)
}

func (a *archive) scan(ctx context.Context, s *Store) error {
	f, err := os.Open(a.path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := decompress(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return err
	}
	tr := tar.NewReader(r)
	last := ""
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if last == "" {
				return fmt.Errorf("read archive: %w", err)
			}
			return fmt.Errorf("read archive entry after %s: %w", last, err)
		}
		name := archivePath(hdr.Name)
		last = name
		if err := a.add(ctx, s, tr, hdr, name); err != nil {
			return fmt.Errorf("read archive entry %s: %w", name, err)
		}
	}
}

func (a *archive) add(ctx context.Context, s *Store, tr *tar.Reader, hdr *tar.Header, name string) error {
	switch hdr.Typeflag {
	case tar.TypeSymlink:
		target := hdr.Linkname
		if !strings.HasPrefix(target, "/") {
			target = path.Join(path.Dir(name), target)
		}
		a.links[name] = archivePath(target)
	case tar.TypeLink:
		a.links[name] = archivePath(hdr.Linkname)
	case tar.TypeReg:
		if metaFiles[name] {
			b, err := io.ReadAll(io.LimitReader(tr, maxMetadata+1))
			if err != nil {
				return err
			}
			if len(b) > maxMetadata {
				return fmt.Errorf("larger than %d bytes: %w", maxMetadata, ErrInvalid)
			}
			a.meta[name] = b
			return nil
		}
		if base := path.Base(name); strings.Contains(name, "/") && !strings.HasPrefix(name, "blobs/") &&
			(base == "json" || base == "VERSION") {
			return nil // legacy docker save per-layer metadata, unused
		}
		ing, err := s.NewIngest(ctx)
		if err != nil {
			return err
		}
		a.all = append(a.all, ing)
		a.files[name] = ing
		_, err = io.Copy(ing, tr)
		return err
	}
	return nil // directories and anything else carry nothing we use
}

// decompress undoes gzip, the one compression `docker save | gzip` users
// apply, and names the others it refuses.
func decompress(br *bufio.Reader) (io.Reader, error) {
	magic, _ := br.Peek(6)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("read gzip archive: %w", err)
		}
		zr.Multistream(false)
		return zr, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return nil, fmt.Errorf("zstd-compressed archive: %w (decompress it first)", ErrUnsupported)
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return nil, fmt.Errorf("xz-compressed archive: %w (decompress it first)", ErrUnsupported)
	case bytes.HasPrefix(magic, []byte("BZh")):
		return nil, fmt.Errorf("bzip2-compressed archive: %w (decompress it first)", ErrUnsupported)
	}
	return br, nil
}

// archivePath normalizes an entry name: no leading "./" or "/", cleaned.
// Names are only looked up, never created on disk, so ".." is harmless.
func archivePath(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

func (a *archive) readMeta(name string) ([]byte, error) {
	b, ok := a.meta[name]
	if !ok {
		return nil, fmt.Errorf("%s not in archive: %w", name, fs.ErrNotExist)
	}
	return b, nil
}

// file finds the staged file at name, following links.
func (a *archive) file(name string) (*Ingest, bool) {
	name = archivePath(name)
	for range 16 {
		if ing, ok := a.files[name]; ok {
			return ing, true
		}
		t, ok := a.links[name]
		if !ok {
			return nil, false
		}
		name = t
	}
	return nil, false
}

func (a *archive) stage(_ context.Context, _ *Store, d v1.Descriptor) (*Ingest, error) {
	if ing, ok := a.file(path.Join(ocispec.ImageBlobsDir, d.Digest.Algorithm, d.Digest.Hex)); ok {
		return ing, nil
	}
	if ing, ok := a.byDigest[d.Digest]; ok {
		return ing, nil
	}
	return nil, fmt.Errorf("blob missing from %s: %w", a.path, ErrNotFound)
}
