package oci

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// checkHash refuses digests the layout cannot hold: only sha256 with 64
// lowercase hex digits names a blob file.
func checkHash(h v1.Hash) error {
	if h.Algorithm != "sha256" {
		return fmt.Errorf("digest %s: algorithm %q: %w", h, h.Algorithm, ErrUnsupported)
	}
	if !isHex64(h.Hex) {
		return fmt.Errorf("digest %s: %w: not 64 lowercase hex digits", h, ErrInvalid)
	}
	return nil
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (s *Store) blobPath(h v1.Hash) string {
	return filepath.Join(s.blobsDir(), h.Hex)
}

// HasBlob reports whether the blob h is in the store. It does not read it.
func (s *Store) HasBlob(h v1.Hash) bool {
	if checkHash(h) != nil {
		return false
	}
	fi, err := os.Stat(s.blobPath(h))
	return err == nil && fi.Mode().IsRegular()
}

// blobSize is the size of blob h on disk, or an error wrapping ErrNotFound.
func (s *Store) blobSize(h v1.Hash) (int64, error) {
	if err := checkHash(h); err != nil {
		return 0, err
	}
	fi, err := os.Stat(s.blobPath(h))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("blob %s: %w", h, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("blob %s: %w", h, err)
	}
	return fi.Size(), nil
}

// OpenBlob opens the blob h for reading. The reader hashes what it returns
// and, at EOF, returns an error wrapping [ErrDigestMismatch] instead of
// io.EOF if the bytes are not h (or not as many as the file had when
// opened). A missing blob is [ErrNotFound]. The caller closes the reader
// and must read to EOF to get the check.
func (s *Store) OpenBlob(h v1.Hash) (io.ReadCloser, error) {
	if err := checkHash(h); err != nil {
		return nil, err
	}
	f, err := os.Open(s.blobPath(h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open blob %s: %w", h, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", h, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open blob %s: %w", h, err)
	}
	return newVerifier(f, h, fi.Size()), nil
}

// verifier checks digest and size of what passes through at EOF.
type verifier struct {
	r    io.Reader
	c    io.Closer
	want v1.Hash
	size int64
	n    int64
	h    hash.Hash
	err  error // sticky result once EOF was seen
}

var _ io.ReadCloser = (*verifier)(nil)

func newVerifier(rc io.ReadCloser, want v1.Hash, size int64) *verifier {
	return &verifier{r: rc, c: rc, want: want, size: size, h: sha256.New()}
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if errors.Is(err, io.EOF) {
		err = v.check()
		v.err = err
	}
	return n, err
}

func (v *verifier) check() error {
	if v.size >= 0 && v.n != v.size {
		return fmt.Errorf("blob %s: read %d bytes, want %d: %w", v.want, v.n, v.size, ErrSizeMismatch)
	}
	if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want.Hex {
		return fmt.Errorf("blob %s: content is sha256:%s: %w", v.want, got, ErrDigestMismatch)
	}
	return io.EOF
}

func (v *verifier) Close() error { return v.c.Close() }

// readBlob reads a whole blob of at most limit bytes, verified.
func (s *Store) readBlob(h v1.Hash, limit int64) ([]byte, error) {
	size, err := s.blobSize(h)
	if err != nil {
		return nil, err
	}
	if size > limit {
		return nil, fmt.Errorf("blob %s: %d bytes, more than the %d allowed for metadata: %w", h, size, limit, ErrInvalid)
	}
	rc, err := s.OpenBlob(h)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	return b, nil
}

// Ingest is a blob being written. Bytes go to a locked temp file in ingest/
// and are hashed as they come; [Ingest.Commit] makes the blob visible.
// An Ingest is used by one goroutine.
type Ingest struct {
	s      *Store
	ctx    context.Context
	f      *os.File
	h      hash.Hash
	n      int64
	closed bool
}

// NewIngest starts writing a blob. The caller must Close the Ingest, which
// discards it unless Commit succeeded; a crashed writer's temp file is
// reclaimed by a later Open. Writes fail once ctx ends.
func (s *Store) NewIngest(ctx context.Context) (*Ingest, error) {
	f, err := createLocked(filepath.Join(s.root, ingestDir), "blob-*")
	if err != nil {
		return nil, fmt.Errorf("start ingest: %w", err)
	}
	return &Ingest{s: s, ctx: ctx, f: f, h: sha256.New()}, nil
}

// Write appends p to the blob.
func (i *Ingest) Write(p []byte) (int, error) {
	if err := i.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := i.f.Write(p)
	i.h.Write(p[:n])
	i.n += int64(n)
	return n, err
}

// Digest is the digest of the bytes written so far.
func (i *Ingest) Digest() v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(i.h.Sum(nil))}
}

// Size is the number of bytes written so far.
func (i *Ingest) Size() int64 { return i.n }

// Commit checks that the bytes written are want (and size bytes long,
// unless size is negative), fsyncs them, renames them into the blob store
// and fsyncs its directory. If the blob is already there, the new copy is
// dropped. Errors wrap [ErrDigestMismatch] or [ErrSizeMismatch] on bad
// content; the Ingest is then still to be closed.
func (i *Ingest) Commit(want v1.Hash, size int64) error {
	if err := i.prepare(want, size); err != nil {
		return err
	}
	if err := i.publish(); err != nil {
		return err
	}
	if err := syncDir(i.s.blobsDir()); err != nil {
		return fmt.Errorf("commit blob %s: %w", want, err)
	}
	return nil
}

// prepare is the first half of Commit: verify and fsync, nothing visible.
func (i *Ingest) prepare(want v1.Hash, size int64) error {
	if err := checkHash(want); err != nil {
		return fmt.Errorf("commit blob: %w", err)
	}
	if size >= 0 && i.n != size {
		return fmt.Errorf("blob %s: got %d bytes, want %d: %w", want, i.n, size, ErrSizeMismatch)
	}
	if got := i.Digest(); got != want {
		return fmt.Errorf("blob %s: content is %s: %w", want, got, ErrDigestMismatch)
	}
	if err := i.f.Sync(); err != nil {
		return fmt.Errorf("commit blob %s: %w", want, err)
	}
	return nil
}

// publish is the second half of Commit: rename into blobs/ (the caller
// fsyncs the directory, once for a batch).
func (i *Ingest) publish() error {
	want := i.Digest()
	if i.s.HasBlob(want) {
		return nil // Close removes the redundant copy
	}
	if err := os.Rename(i.f.Name(), i.s.blobPath(want)); err != nil {
		return fmt.Errorf("commit blob %s: %w", want, err)
	}
	return nil
}

// reader reads back what was written, for importers that parse a blob
// before committing it.
func (i *Ingest) reader() *io.SectionReader {
	return io.NewSectionReader(i.f, 0, i.n)
}

// Close releases the Ingest, deleting the temp file unless Commit renamed
// it. It is idempotent.
func (i *Ingest) Close() error {
	if i.closed {
		return nil
	}
	i.closed = true
	// After a commit the temp name is gone (renamed into blobs/) or, if the
	// blob was there already, still holds a redundant copy: remove either way.
	err := os.Remove(i.f.Name())
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	return errors.Join(err, i.f.Close())
}

// WriteBlob stores the blob want, of size bytes (negative: unknown), read
// from r. If the store has it already, r is not read. Errors as for
// [Ingest.Commit].
func (s *Store) WriteBlob(ctx context.Context, r io.Reader, want v1.Hash, size int64) (err error) {
	if err := checkHash(want); err != nil {
		return fmt.Errorf("write blob: %w", err)
	}
	if s.HasBlob(want) {
		return nil
	}
	ing, err := s.NewIngest(ctx)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, ing.Close()) }()
	if _, err := io.Copy(ing, r); err != nil {
		return fmt.Errorf("write blob %s: %w", want, err)
	}
	return ing.Commit(want, size)
}
