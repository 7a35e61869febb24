package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// Problem is one thing [Store.Fsck] found wrong.
type Problem struct {
	Object string // what is wrong: "blob sha256:…", "index.json", "image NAME", "snapshot NAME"
	Err    error
}

func (p Problem) String() string { return p.Object + ": " + p.Err.Error() }

// Report is what [Store.Fsck] found.
type Report struct {
	Problems  []Problem
	Blobs     int   // blob files re-hashed
	BlobBytes int64 // their total size
	Images    int   // index.json entries checked
	Snapshots int   // snapshot directories checked
	// Unreferenced blobs are complete and valid but nothing refers to them:
	// left by an untag or an interrupted import. Not a problem; GC
	// removes them.
	Unreferenced []v1.Hash
	// Stale counts ingest/ and tmp/ entries of processes that died; the
	// next Open moves them to trash/. Not a problem.
	Stale int
}

// OK reports whether Fsck found no problem.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

func (r *Report) add(object string, err error) {
	r.Problems = append(r.Problems, Problem{Object: object, Err: err})
}

// Fsck checks the whole store: it re-hashes every blob, parses oci-layout,
// index.json and every manifest, index and config reachable from it,
// checks every reference (present, right size, known media type, as many
// diff IDs as layers), and that snapshots/ holds only directories named by
// a digest. Problems come back in the report, named by object; the error is
// for Fsck itself failing (ctx ended).
func (s *Store) Fsck(ctx context.Context) (*Report, error) {
	r := &Report{}
	if b, err := os.ReadFile(filepath.Join(s.root, layoutDir, ocispec.ImageLayoutFile)); err != nil {
		r.add("oci-layout", err)
	} else if err := checkLayoutVersion(b); err != nil {
		r.add("oci-layout", err)
	}
	present, err := s.fsckBlobs(ctx, r)
	if err != nil {
		return nil, err
	}
	referenced := map[v1.Hash]bool{}
	if idx, err := s.readIndex(); err != nil {
		r.add("index.json", err)
	} else {
		s.fsckIndex(ctx, r, idx, referenced)
	}
	for h := range present {
		if !referenced[h] {
			r.Unreferenced = append(r.Unreferenced, h)
		}
	}
	slices.SortFunc(r.Unreferenced, func(a, b v1.Hash) int { return compareHash(a, b) })
	s.fsckSnapshots(r)
	r.Stale = s.countStale()
	return r, ctx.Err()
}

func compareHash(a, b v1.Hash) int {
	if a.String() < b.String() {
		return -1
	}
	if a.String() > b.String() {
		return 1
	}
	return 0
}

// fsckBlobs re-hashes every blob file, in parallel, and returns the set of
// good ones.
func (s *Store) fsckBlobs(ctx context.Context, r *Report) (map[v1.Hash]bool, error) {
	blobs := filepath.Join(s.root, layoutDir, ocispec.ImageBlobsDir)
	if entries, err := os.ReadDir(blobs); err != nil {
		r.add("blobs/", err)
	} else {
		for _, e := range entries {
			if e.Name() != "sha256" {
				r.add("blobs/"+e.Name(), fmt.Errorf("unexpected entry (only sha256 blobs are stored): %w", ErrInvalid))
			}
		}
	}
	entries, err := os.ReadDir(s.blobsDir())
	if err != nil {
		r.add("blobs/sha256/", err)
		return nil, nil
	}
	present := map[v1.Hash]bool{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for _, e := range entries {
		h := v1.Hash{Algorithm: "sha256", Hex: e.Name()}
		if !isHex64(e.Name()) || !e.Type().IsRegular() {
			r.add("blobs/sha256/"+e.Name(), fmt.Errorf("not a blob (a regular file named by a sha256 digest): %w", ErrInvalid))
			continue
		}
		g.Go(func() error {
			n, err := s.rehash(gctx, h)
			mu.Lock()
			defer mu.Unlock()
			if gctx.Err() != nil {
				return gctx.Err()
			}
			if err != nil {
				r.add("blob "+h.String(), err)
				return nil
			}
			r.Blobs++
			r.BlobBytes += n
			present[h] = true
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return present, nil
}

func (s *Store) rehash(ctx context.Context, h v1.Hash) (int64, error) {
	rc, err := s.OpenBlob(h)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	var n int64
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, err := rc.Read(buf)
		n += int64(m)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// fsckIndex walks every index.json entry, recording what it references.
func (s *Store) fsckIndex(ctx context.Context, r *Report, idx *v1.IndexManifest, referenced map[v1.Hash]bool) {
	names := map[string]bool{}
	for i, d := range idx.Manifests {
		obj := fmt.Sprintf("image %s", d.Digest)
		if n := refName(d); n != "" {
			obj = "image " + n
			if names[n] {
				r.add(obj, fmt.Errorf("tagged twice in index.json: %w", ErrInvalid))
			}
			names[n] = true
			if norm, err := parseTagName(n); err != nil || norm != n {
				r.add(obj, fmt.Errorf("index.json entry %d: not a normalized image name: %w", i+1, ErrInvalid))
			}
		}
		r.Images++
		var manifest v1.Hash // the manifest whose config and layers come next
		err := walkGraph(ctx, d, s.readVerified, func(b v1.Descriptor, kind blobKind, _ []byte, m *v1.Manifest) error {
			referenced[b.Digest] = true
			if kind == kindManifest {
				manifest = b.Digest
			}
			if err := s.checkBlobRef(b, kind, m); err != nil {
				r.add(obj, fmt.Errorf("manifest %s: %w", manifest, err))
			}
			return nil
		})
		if err != nil {
			r.add(obj, err)
		}
	}
}

// checkBlobRef checks a config or layer reference (manifests and indexes
// were read, so checked, by walkGraph).
func (s *Store) checkBlobRef(d v1.Descriptor, kind blobKind, m *v1.Manifest) error {
	switch kind {
	case kindConfig:
		b, err := s.readVerified(d)
		if err != nil {
			return fmt.Errorf("config %w", err)
		}
		_, err = parseConfig(b, m)
		return err
	case kindLayer:
		size, err := s.layerSize(d.Digest) // a lazy layer is known remotely
		if err != nil {
			return fmt.Errorf("layer %w", err)
		}
		if size != d.Size {
			return fmt.Errorf("layer %s: descriptor size %d, blob has %d bytes: %w", d.Digest, d.Size, size, ErrSizeMismatch)
		}
	}
	return nil
}

func (s *Store) fsckSnapshots(r *Report) {
	entries, err := os.ReadDir(filepath.Join(s.root, snapshotsDir))
	if err != nil {
		r.add("snapshots/", err)
		return
	}
	for _, e := range entries {
		if !isHex64(e.Name()) || !e.IsDir() {
			r.add("snapshot "+e.Name(), fmt.Errorf("not a directory named by a diff ID: %w", ErrInvalid))
			continue
		}
		r.Snapshots++
	}
}

// countStale counts ingest/ and tmp/ entries whose owner is gone.
func (s *Store) countStale() int {
	n := 0
	for _, dir := range []string{ingestDir, tmpDir} {
		entries, _ := os.ReadDir(filepath.Join(s.root, dir))
		for _, e := range entries {
			f, err := os.Open(filepath.Join(s.root, dir, e.Name()))
			if err != nil {
				continue
			}
			if ok, _ := tryLock(f, lockShared); ok {
				n++
			}
			f.Close()
		}
	}
	return n
}
