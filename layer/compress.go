package layer

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// gzipBlockSize is pgzip's block size. pgzip cuts its input into blocks of
// exactly this size, deflates each one on its own goroutine with the
// previous block's last 16 KiB as dictionary, and ends each with a sync
// flush. Its output therefore depends on the input and this size only, not
// on how many blocks are in flight: pinning the size (pgzip's default is the
// same 1 MiB, but a default may change) is what makes a gzip layer's digest
// the same on every machine. TestCompressIndependentOfCores checks it.
const gzipBlockSize = 1 << 20

// gzipLevel is klauspost/compress's level 2, chosen for the throughput
// target (>= 150 MB/s on 2 cores, docs/layers-format.md §3). Measured on
// this project's 2-core machine, compressing a tar of /usr binaries,
// libraries and docs: level 6 (the usual default) gives 0.388 of the input
// at 73 MB per CPU-second, level 2 gives 0.422 at 134, level 1 0.433 at
// 144. Level 6 cannot reach 150 MB/s on 2 cores even with nothing else to
// do; level 2 costs 9% in size. zstd is smaller and faster than either.
// Changing the level changes every gzip layer's digest.
const gzipLevel = 2

// zstdConcurrency is pinned rather than taken from GOMAXPROCS. The stream
// encoder of klauspost/compress/zstd writes the same bytes for any
// concurrency as long as WithConcurrentBlocks is off (it only pipelines
// block encoding); with WithConcurrentBlocks on, the output changes between
// concurrency 1 and 2, so that option stays off. TestZstdIndependentOfCores
// checks both claims.
const zstdConcurrency = 2

// Magic numbers that identify a layer's compression (RFC 1952 §2.3.1,
// RFC 8878 §3.1.1). Anything else is read as an uncompressed tar, which is
// what `docker save` tarballs contain.
var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// nopWriteCloser adds a no-op Close to a writer (the "none" compression).
type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// newCompressor returns a writer that compresses into w with c. Its output
// is a function of its input only: gzip headers carry no name, no time
// (MTIME 0) and OS 255 ("unknown").
func newCompressor(c Compression, w io.Writer) (io.WriteCloser, error) {
	switch c {
	case Gzip:
		zw, err := pgzip.NewWriterLevel(w, gzipLevel)
		if err != nil {
			return nil, fmt.Errorf("create gzip writer: %w", err)
		}
		// Blocks in flight only bound memory (2 MiB each) and parallelism;
		// they never change the bytes.
		if err := zw.SetConcurrency(gzipBlockSize, runtime.GOMAXPROCS(0)+2); err != nil {
			return nil, fmt.Errorf("create gzip writer: %w", err)
		}
		zw.ModTime = time.Unix(0, 0) // the zero time.Time would not encode as 0
		zw.Name, zw.Comment, zw.OS = "", "", 255
		return zw, nil
	case Zstd:
		zw, err := zstd.NewWriter(w,
			zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithEncoderConcurrency(zstdConcurrency),
			zstd.WithConcurrentBlocks(false),
			zstd.WithEncoderCRC(true))
		if err != nil {
			return nil, fmt.Errorf("create zstd writer: %w", err)
		}
		return zw, nil
	case Uncompressed:
		return nopWriteCloser{w}, nil
	}
	return nil, fmt.Errorf("create compressor: unknown compression %q", c)
}

// detectCompression looks at the first bytes of br without consuming them.
func detectCompression(br *bufio.Reader) (Compression, error) {
	head, err := br.Peek(len(zstdMagic))
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read layer header: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return Gzip, nil
	case bytes.HasPrefix(head, zstdMagic):
		return Zstd, nil
	}
	return Uncompressed, nil
}

// newDecompressor returns a reader of the uncompressed stream. The caller
// closes it; Close does not close r.
func newDecompressor(c Compression, r io.Reader) (io.ReadCloser, error) {
	switch c {
	case Gzip:
		// pgzip's reader decompresses ahead on one goroutine, overlapping
		// inflate with hashing and writing files. Multistream (concatenated
		// members, RFC 1952 §2.2) stays on, as gzip(1) reads them.
		zr, err := pgzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("read gzip header: %w", err)
		}
		return zr, nil
	case Zstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("create zstd reader: %w", err)
		}
		return zstdReadCloser{zr}, nil
	}
	return io.NopCloser(r), nil
}

// zstdReadCloser adapts zstd.Decoder, whose Close returns nothing.
type zstdReadCloser struct{ *zstd.Decoder }

func (z zstdReadCloser) Close() error {
	z.Decoder.Close()
	return nil
}
