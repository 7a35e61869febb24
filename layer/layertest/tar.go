package layertest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Entry is one tar entry as data, for building layers and for comparing
// what a layer holds with what a test expects.
type Entry struct {
	Name     string
	Type     byte // tar.Type*; zero means tar.TypeReg when building
	Mode     int64
	UID, GID int
	Uname    string // expected empty in minibuild's layers
	Gname    string
	Body     string
	Linkname string
	ModTime  time.Time // zero means the Unix epoch when building
	Devmajor int64
	Devminor int64
	Xattrs   map[string]string // SCHILY.xattr.* PAX records
	// Size, when building, overrides the header's size; zero means
	// len(Body). A Size larger than the body makes a truncated tar: Tar
	// stops right after that body. List fills it from the header.
	Size int64
}

// Tar returns an uncompressed PAX tar of entries, written exactly as given:
// names are not cleaned, so tests can build hostile layers.
func Tar(t testing.TB, entries ...Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{
			Format:   tar.FormatPAX,
			Name:     e.Name,
			Typeflag: e.Type,
			Mode:     e.Mode,
			Uid:      e.UID,
			Gid:      e.GID,
			Uname:    e.Uname,
			Gname:    e.Gname,
			Linkname: e.Linkname,
			ModTime:  e.ModTime,
			Devmajor: e.Devmajor,
			Devminor: e.Devminor,
			Size:     int64(len(e.Body)),
		}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.ModTime.IsZero() {
			hdr.ModTime = time.Unix(0, 0)
		}
		if e.Size != 0 {
			hdr.Size = e.Size
		}
		for k, v := range e.Xattrs {
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = make(map[string]string)
			}
			hdr.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("layertest.Tar: header %q: %v", e.Name, err)
		}
		if _, err := io.WriteString(tw, e.Body); err != nil {
			t.Fatalf("layertest.Tar: body %q: %v", e.Name, err)
		}
		if hdr.Size > int64(len(e.Body)) {
			return buf.Bytes() // truncated on purpose
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("layertest.Tar: close: %v", err)
	}
	return buf.Bytes()
}

// Gzip compresses b with the standard library's gzip.
func Gzip(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatalf("layertest.Gzip: %v", err)
	}
	if err := zw.Close(); err != nil {
		t.Fatalf("layertest.Gzip: %v", err)
	}
	return buf.Bytes()
}

// Zstd compresses b with zstd.
func Zstd(t testing.TB, b []byte) []byte {
	t.Helper()
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatalf("layertest.Zstd: %v", err)
	}
	defer zw.Close()
	return zw.EncodeAll(b, nil)
}

// List decompresses a layer (gzip, zstd or none, by magic bytes) and
// returns its entries with their bodies, in stream order. Names are as in
// the tar; Xattrs holds the SCHILY.xattr.* records.
func List(t testing.TB, layer []byte) []Entry {
	t.Helper()
	r, err := Decompress(bytes.NewReader(layer))
	if err != nil {
		t.Fatalf("layertest.List: %v", err)
	}
	tr := tar.NewReader(r)
	var out []Entry
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("layertest.List: entry %d: %v", len(out), err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("layertest.List: %q: %v", hdr.Name, err)
		}
		e := Entry{
			Name: hdr.Name, Type: hdr.Typeflag, Mode: hdr.Mode, UID: hdr.Uid, GID: hdr.Gid,
			Uname: hdr.Uname, Gname: hdr.Gname, Body: string(body), Linkname: hdr.Linkname,
			ModTime: hdr.ModTime.UTC(), Devmajor: hdr.Devmajor, Devminor: hdr.Devminor, Size: hdr.Size,
		}
		for k, v := range hdr.PAXRecords {
			if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if e.Xattrs == nil {
					e.Xattrs = make(map[string]string)
				}
				e.Xattrs[name] = v
			}
		}
		out = append(out, e)
	}
}

// Decompress returns the uncompressed stream of a layer, detecting gzip and
// zstd by their magic bytes.
func Decompress(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	head, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return gzip.NewReader(br)
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	}
	return br, nil
}
