package inspect

import (
	"archive/tar"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"minibuild/layer"
	"minibuild/oci"
)

// FileType names a file's type in reports and JSON.
type FileType string

// File types.
const (
	TypeFile     FileType = "file"
	TypeDir      FileType = "dir"
	TypeSymlink  FileType = "symlink"
	TypeHardlink FileType = "hardlink"
	TypeChar     FileType = "char"
	TypeBlock    FileType = "block"
	TypeFifo     FileType = "fifo"
	TypeOther    FileType = "other"
)

// Mode is a file's permission and special bits; it prints in octal.
type Mode uint32

// String is the mode in octal with a leading 0, as chmod takes it: "0755".
func (m Mode) String() string { return fmt.Sprintf("%04o", uint32(m)) }

// MarshalText writes the octal form, so JSON reads "0755", not 493.
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// File is one path of a layer or of a merged tree.
type File struct {
	Path     string   `json:"path"` // absolute, slash-separated: "/data/one"
	Type     FileType `json:"type"`
	Mode     Mode     `json:"mode"`
	UID      int      `json:"uid"`
	GID      int      `json:"gid"`
	Size     int64    `json:"size"`             // content bytes; 0 but for regular files and hardlinks to them
	Digest   string   `json:"digest,omitempty"` // sha256 of the content of a regular file (or a hardlink's target)
	Linkname string   `json:"linkname,omitempty"`
	// Xattrs are the extended attributes the layer records.
	Xattrs map[string]string `json:"xattrs,omitempty"`
}

// entry is one tar entry of a layer, whiteouts decoded.
type entry struct {
	File
	rel      string // the path relative to the root ("data/one")
	whiteout bool   // deletes rel from the layers below
	opaque   bool   // rel's lower children are hidden
}

func (e *entry) isDir() bool { return e.Type == TypeDir }

func fileType(t byte) FileType {
	switch t {
	case tar.TypeReg, tar.TypeRegA:
		return TypeFile
	case tar.TypeDir:
		return TypeDir
	case tar.TypeSymlink:
		return TypeSymlink
	case tar.TypeLink:
		return TypeHardlink
	case tar.TypeChar:
		return TypeChar
	case tar.TypeBlock:
		return TypeBlock
	case tar.TypeFifo:
		return TypeFifo
	}
	return TypeOther
}

// readOptions says how much of a layer to read.
type readOptions struct {
	// hash makes readLayer hash every regular file's content; without it
	// Digest stays empty (sizes come from the headers).
	hash bool
}

// readLayer lists the entries of the layer blob d, fetching the blob from
// its recorded sources when the store only knows where it is.
func readLayer(ctx context.Context, s *oci.Store, d v1.Descriptor, opts readOptions) ([]entry, error) {
	if err := s.FetchBlob(ctx, d.Digest, oci.FetchOptions{}); err != nil {
		return nil, err
	}
	rc, err := s.OpenBlob(d.Digest)
	if err != nil {
		return nil, err
	}
	var out []entry
	err = layer.Entries(ctx, rc, func(e layer.Entry, r io.Reader) error {
		en, err := toEntry(e, r, opts)
		if err != nil {
			return err
		}
		out = append(out, en)
		return nil
	})
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	return out, err
}

func toEntry(e layer.Entry, r io.Reader, opts readOptions) (entry, error) {
	en := entry{
		File: File{
			Path: "/" + e.Path, Type: fileType(e.Type), Mode: Mode(e.Mode),
			UID: e.UID, GID: e.GID, Linkname: e.Linkname, Xattrs: e.Xattrs,
		},
		rel: e.Path, whiteout: e.Whiteout, opaque: e.Opaque,
	}
	if e.Whiteout || e.Opaque {
		en.Type = ""
		return en, nil
	}
	if en.Type == TypeHardlink {
		en.Linkname = "/" + e.Linkname
	}
	if en.Type != TypeFile {
		return en, nil
	}
	en.Size = e.Size
	if opts.hash {
		h := sha256.New()
		if _, err := io.Copy(h, r); err != nil {
			return entry{}, fmt.Errorf("read %s: %w", en.Path, err)
		}
		en.Digest = "sha256:" + hex.EncodeToString(h.Sum(nil))
	}
	return en, nil
}

// readLayers reads the layers ds in parallel (each distinct blob once) and
// returns their entries in the order of ds.
func readLayers(ctx context.Context, s *oci.Store, ds []v1.Descriptor, opts readOptions) ([][]entry, error) {
	byDigest := map[v1.Hash][]entry{}
	for _, d := range ds {
		byDigest[d.Digest] = nil
	}
	digests := slices.SortedFunc(maps.Keys(byDigest), func(a, b v1.Hash) int {
		return cmp.Compare(a.String(), b.String())
	})
	results := make([][]entry, len(digests))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, h := range digests {
		d := descriptorOf(ds, h)
		g.Go(func() error {
			es, err := readLayer(gctx, s, d, opts)
			if err != nil {
				return fmt.Errorf("read layer %s: %w", h, err)
			}
			results[i] = es
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		if ctx.Err() != nil {
			return nil, errors.Join(ctx.Err(), err)
		}
		return nil, err
	}
	for i, h := range digests {
		byDigest[h] = results[i]
	}
	out := make([][]entry, len(ds))
	for i, d := range ds {
		out[i] = byDigest[d.Digest]
	}
	return out, nil
}

func descriptorOf(ds []v1.Descriptor, h v1.Hash) v1.Descriptor {
	for _, d := range ds {
		if d.Digest == h {
			return d
		}
	}
	return v1.Descriptor{Digest: h}
}

// layerBytes is the content bytes of a layer's entries.
func layerBytes(es []entry) int64 {
	var n int64
	for _, e := range es {
		n += e.Size
	}
	return n
}
