package builder

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
)

// compression is a stream format ADD recognizes by content, never by
// file name (like Docker).
type compression int

const (
	uncompressed compression = iota
	gzipped
	bzip2ed
	xzed
	zstded
)

func (c compression) String() string {
	return [...]string{"tar", "gzip", "bzip2", "xz", "zstd"}[c]
}

// detectCompression looks at the first bytes of a stream (the magic
// numbers moby/go-archive checks).
func detectCompression(head []byte) compression {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b, 0x08}):
		return gzipped
	case bytes.HasPrefix(head, []byte("BZh")):
		return bzip2ed
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return xzed
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return zstded
	}
	return uncompressed
}

// tarStream is an archive being read: the tar reader, its first header
// (reading it is how an archive is recognized), and what to release.
type tarStream struct {
	tr     *tar.Reader
	first  *tar.Header
	format compression
	cmd    *osexec.Cmd // external decompressor, if any
	closer io.Closer
}

// openTar returns f as a tar stream if it is a tar archive, plain or
// compressed with gzip, bzip2, xz or zstd; ok is false when it is not one
// (an empty file, a lone compressed file, anything else), and f is then
// rewound for a plain copy. gzip and bzip2 are decoded in-process; xz and
// zstd by the xz and zstd programs, as Docker does for xz. No goroutine is
// started: the decompressor writes to a pipe read on the caller's thread.
func openTar(f *os.File) (ts *tarStream, ok bool, err error) {
	head := make([]byte, 8)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, false, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, false, err
	}
	ts = &tarStream{format: detectCompression(head[:n])}
	var r io.Reader
	switch ts.format {
	case uncompressed:
		r = f
	case gzipped:
		gz, err := gzip.NewReader(bufio.NewReader(f))
		if err != nil {
			return nil, false, rewind(f, nil)
		}
		r, ts.closer = gz, gz
	case bzip2ed:
		r = bzip2.NewReader(bufio.NewReader(f))
	case xzed, zstded:
		if r, err = ts.startDecompressor(f); err != nil {
			return nil, false, err
		}
	}
	ts.tr = tar.NewReader(r)
	first, err := ts.tr.Next()
	if err != nil {
		ts.close()
		return nil, false, rewind(f, nil)
	}
	ts.first = first
	return ts, true, nil
}

// startDecompressor runs "xz -d -c -q" or "zstd -d -c -q" with f as stdin.
func (ts *tarStream) startDecompressor(f *os.File) (io.Reader, error) {
	name := ts.format.String()
	cmd := osexec.Command(name, "-d", "-c", "-q")
	cmd.Stdin = f
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("decompress %s archive: %w", name, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("decompress %s archive (is %s installed?): %w", name, name, err)
	}
	ts.cmd, ts.closer = cmd, out
	return out, nil
}

// close releases the stream; for an external decompressor it also reaps
// the process (killed first if the archive was not read to the end).
func (ts *tarStream) close() error {
	var errs []error
	if ts.cmd != nil {
		_ = ts.cmd.Process.Kill() // finished already, or no longer wanted
	}
	if ts.closer != nil {
		errs = append(errs, ts.closer.Close())
	}
	if ts.cmd != nil {
		_ = ts.cmd.Wait() // exit status after Kill carries no information
	}
	return errors.Join(errs...)
}

// finish checks that an external decompressor succeeded, after the whole
// archive was read.
func (ts *tarStream) finish() error {
	if ts.cmd == nil {
		return ts.close()
	}
	// Drain what tar did not need (padding) so the process can exit.
	_, _ = io.Copy(io.Discard, ts.closer.(io.Reader))
	err := ts.cmd.Wait()
	ts.cmd = nil
	if cerr := ts.closer.Close(); err == nil && !errors.Is(cerr, os.ErrClosed) {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("decompress %s archive: %w", ts.format, err)
	}
	return nil
}

func rewind(f *os.File, err error) error {
	if _, serr := f.Seek(0, io.SeekStart); serr != nil {
		return serr
	}
	return err
}
