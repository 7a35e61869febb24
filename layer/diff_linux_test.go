//go:build linux

package layer_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"minibuild/internal/testenv"
	"minibuild/layer"
	"minibuild/layer/layertest"
)

// Times used by the fixtures: old ones survive the clamp, new ones do not.
var (
	old   = time.Date(1975, 6, 1, 12, 0, 0, 0, time.UTC)
	older = time.Date(1971, 1, 1, 0, 0, 0, 0, time.UTC)
	newer = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	epoch = time.Unix(layer.DefaultEpoch, 0).UTC()
)

// capNetRaw is a VFS_CAP_REVISION_2 security.capability value granting
// cap_net_raw (bit 13), as ping carries.
const capNetRaw = "\x01\x00\x00\x02" + "\x00\x20\x00\x00" + "\x00\x00\x00\x00" + "\x00\x00\x00\x00" + "\x00\x00\x00\x00"

// diffBytes runs Diff into memory.
func diffBytes(t *testing.T, dir string, opts layer.DiffOptions) (layer.Descriptor, []byte) {
	t.Helper()
	var buf bytes.Buffer
	d, err := layer.Diff(context.Background(), dir, &buf, opts)
	if err != nil {
		t.Fatalf("Diff(%s) = %v", dir, err)
	}
	if d.Size != int64(buf.Len()) {
		t.Fatalf("Diff(%s).Size = %d, wrote %d bytes", dir, d.Size, buf.Len())
	}
	return d, buf.Bytes()
}

// own makes n owned by the user running the test, so that tests without
// privileges can build it.
func own(n layertest.Node) layertest.Node {
	n.UID, n.GID = os.Getuid(), os.Getgid()
	return n
}

// representative is a tree with one of everything Diff handles.
func representative() []layertest.Node {
	long := strings.Repeat("d", 60) + "/" + strings.Repeat("f", 80)
	return []layertest.Node{
		{Path: "bin", Type: tar.TypeDir, Mode: 0o755, ModTime: old},
		{Path: "bin/ls", Type: tar.TypeReg, Mode: 0o755, Data: "ls", ModTime: old},
		{Path: "bin/dir", Type: tar.TypeLink, Target: "bin/ls"},
		{Path: "bin/su", Type: tar.TypeReg, Mode: 0o4755, Data: "su", ModTime: newer},
		{Path: "bin/sh", Type: tar.TypeSymlink, Target: "/bin/busybox", ModTime: old},
		{Path: "dev", Type: tar.TypeDir, Mode: 0o755, ModTime: old},
		{Path: "dev/null", Type: tar.TypeChar, Mode: 0o666, Major: 1, Minor: 3, ModTime: old},
		{Path: "dev/loop0", Type: tar.TypeBlock, Mode: 0o660, GID: 6, Major: 7, Minor: 0, ModTime: old},
		{Path: "etc", Type: tar.TypeDir, Mode: 0o755, ModTime: newer},
		{Path: "etc/passwd", Type: tar.TypeReg, Mode: 0o644, UID: 1000, GID: 1000, Data: "root:x:0:0\n", ModTime: old,
			Xattrs: map[string]string{"user.kept": "1", "trusted.kept": "2", "security.capability": capNetRaw,
				"trusted.overlay.origin": "x", "security.selinux": "system_u:object_r:etc_t:s0"}},
		{Path: "etc/big-ids", Type: tar.TypeReg, Mode: 0o600, UID: 3000000, GID: 3000001, ModTime: older},
		{Path: "run", Type: tar.TypeDir, Mode: 0o1777, ModTime: old},
		{Path: "run/fifo", Type: tar.TypeFifo, Mode: 0o620, ModTime: old},
		{Path: "run/sock", Type: layertest.TypeSocket, Mode: 0o777, ModTime: old},
		{Path: "run/empty", Type: tar.TypeDir, Mode: 0o700, ModTime: old},
		{Path: strings.Repeat("d", 60), Type: tar.TypeDir, Mode: 0o755, ModTime: old},
		{Path: long, Type: tar.TypeReg, Mode: 0o644, Data: "long", ModTime: old},
	}
}

func TestDiffEntries(t *testing.T) {
	testenv.RequirePrivileged(t) // owners, devices, trusted.* xattrs
	t.Parallel()
	dir := t.TempDir()
	layertest.Build(t, dir, representative()...)

	d, b := diffBytes(t, dir, layer.DiffOptions{Compression: layer.Uncompressed})
	long := strings.Repeat("d", 60) + "/" + strings.Repeat("f", 80)
	want := []layertest.Entry{
		{Name: "bin/", Type: tar.TypeDir, Mode: 0o755, ModTime: old},
		{Name: "bin/dir", Type: tar.TypeReg, Mode: 0o755, Body: "ls", ModTime: old, Size: 2},
		{Name: "bin/ls", Type: tar.TypeLink, Mode: 0o755, Linkname: "bin/dir", ModTime: old},
		{Name: "bin/sh", Type: tar.TypeSymlink, Mode: 0o777, Linkname: "/bin/busybox", ModTime: old},
		{Name: "bin/su", Type: tar.TypeReg, Mode: 0o4755, Body: "su", ModTime: epoch, Size: 2},
		{Name: strings.Repeat("d", 60) + "/", Type: tar.TypeDir, Mode: 0o755, ModTime: old},
		{Name: long, Type: tar.TypeReg, Mode: 0o644, Body: "long", ModTime: old, Size: 4},
		{Name: "dev/", Type: tar.TypeDir, Mode: 0o755, ModTime: old},
		{Name: "dev/loop0", Type: tar.TypeBlock, Mode: 0o660, GID: 6, Devmajor: 7, ModTime: old},
		{Name: "dev/null", Type: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: old},
		{Name: "etc/", Type: tar.TypeDir, Mode: 0o755, ModTime: epoch},
		{Name: "etc/big-ids", Type: tar.TypeReg, Mode: 0o600, UID: 3000000, GID: 3000001, ModTime: older},
		{Name: "etc/passwd", Type: tar.TypeReg, Mode: 0o644, UID: 1000, GID: 1000, Body: "root:x:0:0\n", ModTime: old, Size: 11,
			Xattrs: map[string]string{"user.kept": "1", "trusted.kept": "2", "security.capability": capNetRaw}},
		{Name: "run/", Type: tar.TypeDir, Mode: 0o1777, ModTime: old},
		{Name: "run/empty/", Type: tar.TypeDir, Mode: 0o700, ModTime: old},
		{Name: "run/fifo", Type: tar.TypeFifo, Mode: 0o620, ModTime: old},
	}
	if diff := cmp.Diff(want, layertest.List(t, b)); diff != "" {
		t.Errorf("Diff entries (-want +got):\n%s", diff)
	}
	if d.MediaType != layer.MediaTypeTar || d.Digest != d.DiffID || d.Size != d.UncompressedSize {
		t.Errorf("Diff descriptor = %+v, want an uncompressed one (digest = diffID)", d)
	}
	// Headers: PAX only where USTAR cannot say it, and never times other
	// than mtime.
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		if !hdr.AccessTime.IsZero() || !hdr.ChangeTime.IsZero() || hdr.ModTime.Nanosecond() != 0 {
			t.Errorf("%s: atime %v ctime %v mtime %v, want mtime in whole seconds only", hdr.Name, hdr.AccessTime, hdr.ChangeTime, hdr.ModTime)
		}
		if hdr.Format == tar.FormatGNU {
			t.Errorf("%s: GNU header, want USTAR/PAX", hdr.Name)
		}
	}
}

func TestDiffWhiteoutForms(t *testing.T) {
	testenv.RequirePrivileged(t) // trusted.* xattrs, 0:0 devices
	t.Parallel()
	dir := func(p string, x map[string]string) layertest.Node {
		return layertest.Node{Path: p, Type: tar.TypeDir, Mode: 0o755, ModTime: old, Xattrs: x}
	}
	tests := []struct {
		name  string
		tree  []layertest.Node
		want  []string // entry names
		wantX map[string]map[string]string
	}{
		{"char device", []layertest.Node{
			dir("a", nil),
			{Path: "a/gone", Type: tar.TypeChar},
		}, []string{"a/", "a/.wh.gone"}, nil},
		{"trusted whiteout xattr", []layertest.Node{
			dir("a", map[string]string{"trusted.overlay.opaque": "x"}),
			{Path: "a/gone", Type: tar.TypeReg, Xattrs: map[string]string{"trusted.overlay.whiteout": ""}},
			{Path: "a/kept", Type: tar.TypeReg},
		}, []string{"a/", "a/.wh.gone", "a/kept"}, nil},
		{"user whiteout xattr", []layertest.Node{
			dir("a", map[string]string{"user.overlay.opaque": "x"}),
			{Path: "a/gone", Type: tar.TypeReg, Xattrs: map[string]string{"user.overlay.whiteout": ""}},
		}, []string{"a/", "a/.wh.gone"}, nil},
		{"trusted opaque", []layertest.Node{
			dir("a", map[string]string{"trusted.overlay.opaque": "y", "user.x": "1"}),
			{Path: "a/new", Type: tar.TypeReg},
		}, []string{"a/", "a/.wh..wh..opq", "a/new"}, map[string]map[string]string{"a/": {"user.x": "1"}}},
		{"user opaque", []layertest.Node{
			dir("a", map[string]string{"user.overlay.opaque": "y"}),
		}, []string{"a/", "a/.wh..wh..opq"}, nil},
		{"whiteouts before siblings", []layertest.Node{
			dir("a", nil),
			{Path: "a/!first", Type: tar.TypeReg},
			{Path: "a/b", Type: tar.TypeChar},
			{Path: "a/z", Type: tar.TypeChar},
		}, []string{"a/", "a/.wh.b", "a/.wh.z", "a/!first"}, nil},
		{"overlay state dropped", []layertest.Node{
			dir("a", map[string]string{"trusted.overlay.origin": "o", "trusted.overlay.impure": "y", "trusted.overlay.redirect": "/x"}),
		}, []string{"a/"}, nil},
		{"whiteout xattr on non-empty file is a file", []layertest.Node{
			{Path: "f", Type: tar.TypeReg, Data: "data", Xattrs: map[string]string{"trusted.overlay.whiteout": ""}},
		}, []string{"f"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			layertest.Build(t, root, tt.tree...)
			_, b := diffBytes(t, root, layer.DiffOptions{Compression: layer.Uncompressed})
			var names []string
			gotX := map[string]map[string]string{}
			for _, e := range layertest.List(t, b) {
				names = append(names, e.Name)
				if e.Xattrs != nil {
					gotX[e.Name] = e.Xattrs
				}
				if strings.Contains(e.Name, ".wh.") {
					want := layertest.Entry{Name: e.Name, Type: tar.TypeReg, ModTime: epoch}
					if diff := cmp.Diff(want, e); diff != "" {
						t.Errorf("whiteout entry (-want +got):\n%s", diff)
					}
				}
			}
			if diff := cmp.Diff(tt.want, names); diff != "" {
				t.Errorf("Diff names (-want +got):\n%s", diff)
			}
			if tt.wantX == nil {
				tt.wantX = map[string]map[string]string{}
			}
			if diff := cmp.Diff(tt.wantX, gotX); diff != "" {
				t.Errorf("Diff xattrs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDiffReservedName(t *testing.T) {
	t.Parallel()
	for _, name := range []string{".wh.file", ".wh..wh..opq", "sub/.wh.x"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			layertest.Build(t, root,
				own(layertest.Node{Path: "sub", Type: tar.TypeDir, Mode: 0o755}),
				own(layertest.Node{Path: name, Type: tar.TypeReg, Mode: 0o644}))
			_, err := layer.Diff(context.Background(), root, &bytes.Buffer{}, layer.DiffOptions{})
			if !errors.Is(err, layer.ErrReservedName) {
				t.Errorf("Diff(tree with %s) = %v, want ErrReservedName", name, err)
			}
		})
	}
}

func TestDiffCanceled(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	layertest.Build(t, root, own(layertest.Node{Path: "f", Type: tar.TypeReg, Mode: 0o644, Data: "x"}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := layer.Diff(ctx, root, &bytes.Buffer{}, layer.DiffOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Diff(canceled) = %v, want context.Canceled", err)
	}
}

// failWriter fails after n bytes.
type failWriter struct{ n int }

var errWrite = errors.New("disk full")

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		return 0, errWrite
	}
	w.n -= len(p)
	return len(p), nil
}

func TestDiffWriteError(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	layertest.Build(t, root, own(layertest.Node{Path: "f", Type: tar.TypeReg, Mode: 0o644, Data: string(randomBytes(1, 3<<20))}))
	for _, c := range []layer.Compression{layer.Gzip, layer.Zstd, layer.Uncompressed} {
		_, err := layer.Diff(context.Background(), root, &failWriter{n: 1000}, layer.DiffOptions{Compression: c})
		if !errors.Is(err, errWrite) {
			t.Errorf("Diff(%s, failing writer) = %v, want %v", c, err, errWrite)
		}
	}
}
