package layer

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// defaultMaxSize bounds a layer's uncompressed size when
// [ApplyOptions.MaxSize] is zero.
const defaultMaxSize int64 = 64 << 30

// hashWriter hashes and counts every byte it passes on to w.
type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func newHashWriter(w io.Writer) *hashWriter { return &hashWriter{w: w, h: sha256.New()} }

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}

func (hw *hashWriter) sum() v1.Hash { return sumHash(hw.h) }

// hashReader hashes and counts every byte read through it and fails with
// ErrTooLarge once more than max bytes (max > 0) have come through.
type hashReader struct {
	r   io.Reader
	h   hash.Hash
	n   int64
	max int64
}

func newHashReader(r io.Reader, max int64) *hashReader {
	return &hashReader{r: r, h: sha256.New(), max: max}
}

func (hr *hashReader) Read(p []byte) (int, error) {
	n, err := hr.r.Read(p)
	hr.h.Write(p[:n])
	hr.n += int64(n)
	if hr.max > 0 && hr.n > hr.max {
		return n, fmt.Errorf("read layer: more than %d bytes uncompressed: %w", hr.max, ErrTooLarge)
	}
	return n, err
}

func (hr *hashReader) sum() v1.Hash { return sumHash(hr.h) }

func sumHash(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

// stickyWriter passes writes to w until the first error, which it records;
// after that (or after abort) it swallows everything. A parallel compressor
// writing from its own goroutines never sees an error, so it always runs to
// completion on Close and leaves no goroutine behind; the walk polls err()
// and stops instead.
type stickyWriter struct {
	w   io.Writer
	mu  sync.Mutex
	bad error
}

func (sw *stickyWriter) Write(p []byte) (int, error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.bad != nil {
		return len(p), nil
	}
	n, err := sw.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		sw.bad = fmt.Errorf("write layer: %w", err)
	}
	return len(p), nil
}

func (sw *stickyWriter) err() error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.bad
}

// abort makes every later write a no-op (the stream is being abandoned).
func (sw *stickyWriter) abort(cause error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.bad == nil {
		sw.bad = cause
	}
}

// layerStream reads a layer: the raw bytes are hashed for the digest, the
// decompressed bytes for the diffID.
type layerStream struct {
	raw         *hashReader // compressed bytes, as read from the caller
	br          *bufio.Reader
	dec         io.ReadCloser
	tar         *hashReader // uncompressed bytes, bounded
	compression Compression
}

// openLayer detects the compression of r and starts decompressing it. max
// bounds the uncompressed size (0: unbounded). The caller calls close.
func openLayer(r io.Reader, max int64) (*layerStream, error) {
	s := &layerStream{raw: newHashReader(r, 0)}
	s.br = bufio.NewReaderSize(s.raw, 1<<20)
	c, err := detectCompression(s.br)
	if err != nil {
		return nil, err
	}
	s.compression = c
	if s.dec, err = newDecompressor(c, s.br); err != nil {
		return nil, err
	}
	s.tar = newHashReader(s.dec, max)
	return s, nil
}

// finish reads both streams to EOF, so that bytes after the tar's end
// (record padding, concatenated members) count in the digests, and returns
// what was read.
func (s *layerStream) finish() (Descriptor, error) {
	if _, err := io.Copy(io.Discard, s.tar); err != nil {
		return Descriptor{}, fmt.Errorf("read layer to end: %w", err)
	}
	if _, err := io.Copy(io.Discard, s.br); err != nil {
		return Descriptor{}, fmt.Errorf("read layer to end: %w", err)
	}
	return Descriptor{
		MediaType:        s.compression.MediaType(),
		Digest:           s.raw.sum(),
		Size:             s.raw.n,
		DiffID:           s.tar.sum(),
		UncompressedSize: s.tar.n,
	}, nil
}

func (s *layerStream) close() {
	if s != nil && s.dec != nil {
		s.dec.Close()
	}
}

// verify compares d with the digests the caller expects (zero: unchecked).
func verify(d Descriptor, digest, diffID v1.Hash) error {
	if digest != (v1.Hash{}) && digest != d.Digest {
		return fmt.Errorf("verify layer digest: got %s, want %s: %w", d.Digest, digest, ErrDigestMismatch)
	}
	if diffID != (v1.Hash{}) && diffID != d.DiffID {
		return fmt.Errorf("verify layer diffID: got %s, want %s: %w", d.DiffID, diffID, ErrDigestMismatch)
	}
	return nil
}
