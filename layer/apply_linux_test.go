//go:build linux

package layer_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"minibuild/internal/testenv"
	"minibuild/layer"
	"minibuild/layer/layertest"
)

func sha256Of(b []byte) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256(b))}
}

// applyBytes applies a layer held in memory.
func applyBytes(root string, b []byte, opts layer.ApplyOptions) (layer.Descriptor, error) {
	return layer.Apply(context.Background(), root, bytes.NewReader(b), opts)
}

// overlayish adds to the representative tree what an upperdir holds that
// Normalize must rewrite.
func overlayish() []layertest.Node {
	dir := func(p string, x map[string]string) layertest.Node {
		return layertest.Node{Path: p, Type: tar.TypeDir, Mode: 0o755, ModTime: newer, Xattrs: x}
	}
	return append(representative(),
		dir("up", map[string]string{"trusted.overlay.origin": "o", "trusted.overlay.opaque": "x"}),
		layertest.Node{Path: "up/gone", Type: tar.TypeChar, Mode: 0o600, UID: 12, ModTime: newer},
		layertest.Node{Path: "up/xgone", Type: tar.TypeReg, Xattrs: map[string]string{"trusted.overlay.whiteout": ""}},
		layertest.Node{Path: "up/file", Type: tar.TypeReg, Mode: 0o640, Data: "up", ModTime: newer,
			Xattrs: map[string]string{"trusted.overlay.origin": "o", "user.keep": "k"}},
		dir("up/opaque", map[string]string{"trusted.overlay.opaque": "y"}),
		layertest.Node{Path: "up/opaque/new", Type: tar.TypeReg, Mode: 0o644, Data: "new", ModTime: newer},
		dir("up/uopaque", map[string]string{"user.overlay.opaque": "y"}),
	)
}

// TestApplyNormalizeRoundTrip: after Diff with Normalize, the directory is
// exactly what Apply makes of the layer, and Apply reads back the same
// descriptor.
func TestApplyNormalizeRoundTrip(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	for _, c := range []layer.Compression{layer.Gzip, layer.Zstd, layer.Uncompressed} {
		t.Run(string(c), func(t *testing.T) {
			t.Parallel()
			src, dst := t.TempDir(), t.TempDir()
			layertest.Build(t, src, overlayish()...)
			d, b := diffBytes(t, src, layer.DiffOptions{Compression: c, Normalize: true})

			got, err := applyBytes(dst, b, layer.ApplyOptions{Digest: d.Digest, DiffID: d.DiffID})
			if err != nil {
				t.Fatalf("Apply = %v", err)
			}
			if got != d {
				t.Errorf("Apply descriptor = %+v, want Diff's %+v", got, d)
			}
			if diff := cmp.Diff(layertest.Snapshot(t, src), layertest.Snapshot(t, dst)); diff != "" {
				t.Errorf("normalized dir vs applied layer (-normalized +applied):\n%s", diff)
			}
			// Both are now snapshots of the same layer.
			for _, dir := range []string{src, dst} {
				if again, _ := diffBytes(t, dir, layer.DiffOptions{Compression: c}); again != d {
					t.Errorf("Diff(%s) after round trip = %+v, want %+v", dir, again, d)
				}
			}
		})
	}
}

func TestApplyDescriptor(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	uid, gid := os.Getuid(), os.Getgid()
	layertest.Build(t, src,
		layertest.Node{Path: "d", Type: tar.TypeDir, Mode: 0o755, UID: uid, GID: gid, ModTime: old},
		layertest.Node{Path: "d/f", Type: tar.TypeReg, Mode: 0o644, UID: uid, GID: gid, Data: string(randomBytes(3, 100000)), ModTime: old})
	bad := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
	for _, c := range []layer.Compression{layer.Gzip, layer.Zstd, layer.Uncompressed} {
		d, b := diffBytes(t, src, layer.DiffOptions{Compression: c})
		tests := []struct {
			name string
			opts layer.ApplyOptions
			want error
		}{
			{"unchecked", layer.ApplyOptions{}, nil},
			{"checked", layer.ApplyOptions{Digest: d.Digest, DiffID: d.DiffID}, nil},
			{"wrong digest", layer.ApplyOptions{Digest: bad}, layer.ErrDigestMismatch},
			{"wrong diffID", layer.ApplyOptions{DiffID: bad}, layer.ErrDigestMismatch},
		}
		for _, tt := range tests {
			got, err := applyBytes(t.TempDir(), b, tt.opts)
			if !errors.Is(err, tt.want) {
				t.Errorf("%s: Apply(%s) = %v, want %v", c, tt.name, err, tt.want)
			}
			if err == nil && got != d {
				t.Errorf("%s: Apply(%s) = %+v, want %+v", c, tt.name, got, d)
			}
		}
	}
}

// TestApplyDockerSave: a `docker save` layer.tar is an uncompressed tar
// padded to a 10 KiB record; the padding is part of its diffID.
func TestApplyDockerSave(t *testing.T) {
	t.Parallel()
	b := layertest.Tar(t, layertest.Entry{Name: "etc/", Type: tar.TypeDir, Mode: 0o755, UID: os.Getuid(), GID: os.Getgid()},
		layertest.Entry{Name: "etc/hostname", Mode: 0o644, Body: "box\n", UID: os.Getuid(), GID: os.Getgid()})
	b = append(b, make([]byte, 10240-len(b)%10240)...)
	d, err := applyBytes(t.TempDir(), b, layer.ApplyOptions{DiffID: sha256Of(b), Digest: sha256Of(b)})
	if err != nil {
		t.Fatalf("Apply(docker save layer) = %v", err)
	}
	if d.MediaType != layer.MediaTypeTar || d.Size != int64(len(b)) || d.UncompressedSize != int64(len(b)) {
		t.Errorf("Apply(docker save layer) = %+v, want uncompressed, %d bytes", d, len(b))
	}
}

func TestApplyBadInput(t *testing.T) {
	t.Parallel()
	own := func(e layertest.Entry) layertest.Entry { e.UID, e.GID = os.Getuid(), os.Getgid(); return e }
	good := layertest.Tar(t, own(layertest.Entry{Name: "f", Mode: 0o644, Body: string(randomBytes(5, 300000))}))
	gz, zs := layertest.Gzip(t, good), layertest.Zstd(t, good)
	zeros := layertest.Gzip(t, layertest.Tar(t, own(layertest.Entry{Name: "z", Mode: 0o644, Body: string(make([]byte, 4<<20))})))
	tests := []struct {
		name  string
		layer []byte
		opts  layer.ApplyOptions
		want  error // nil: any error
	}{
		{"truncated tar", layertest.Tar(t, own(layertest.Entry{Name: "f", Mode: 0o644, Body: "abc", Size: 4096})), layer.ApplyOptions{}, nil},
		{"tar cut in a header", good[:700], layer.ApplyOptions{}, nil},
		{"truncated gzip", gz[:len(gz)/2], layer.ApplyOptions{}, nil},
		{"truncated zstd", zs[:len(zs)/2], layer.ApplyOptions{}, nil},
		{"gzip with garbage after it", append(bytes.Clone(gz), "garbage!"...), layer.ApplyOptions{}, nil},
		{"not a tar", []byte(strings.Repeat("hello world ", 100)), layer.ApplyOptions{}, nil},
		{"unsupported type", layertest.Tar(t, own(layertest.Entry{Name: "v", Type: 'V'})), layer.ApplyOptions{}, nil},
		{"too large", good, layer.ApplyOptions{MaxSize: 64 << 10}, layer.ErrTooLarge},
		{"gzip bomb", zeros, layer.ApplyOptions{MaxSize: 1 << 20}, layer.ErrTooLarge},
		{"wrong digest", gz, layer.ApplyOptions{Digest: sha256Of(good)}, layer.ErrDigestMismatch},
		{"wrong diffID", gz, layer.ApplyOptions{DiffID: sha256Of(gz)}, layer.ErrDigestMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := applyBytes(t.TempDir(), tt.layer, tt.opts)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("Apply(%s) = %v, want an error wrapping %v", tt.name, err, tt.want)
			}
		})
	}
}

// TestApplyWhiteoutModes checks both whiteout modes on one layer, over a
// lower tree for MergeWhiteouts.
func TestApplyWhiteoutModes(t *testing.T) {
	testenv.RequirePrivileged(t) // 0:0 devices, trusted.* xattrs
	t.Parallel()
	d := func(name string) layertest.Entry {
		return layertest.Entry{Name: name, Type: tar.TypeDir, Mode: 0o755, ModTime: old}
	}
	f := func(name string) layertest.Entry {
		return layertest.Entry{Name: name, Mode: 0o644, Body: name, ModTime: old}
	}
	wh := func(name string) layertest.Entry { return layertest.Entry{Name: name, ModTime: epoch} }
	b := layertest.Tar(t,
		d("a/"), wh("a/.wh.b"),
		d("c/"), wh("c/.wh..wh..opq"), f("c/new"),
		wh(".wh.e"),
		f("f"), wh(".wh.f"), // same layer: the file wins
		d("h/"), f("h/new"), wh("h/.wh..wh..opq"), // opaque after children
		d("i/"), d("i/sub/"), f("i/sub/new"), wh("i/.wh..wh..opq"),
		wh(".wh..wh.plnk"), // aufs metadata: ignored
	)
	lower := []layertest.Node{
		{Path: "a", Type: tar.TypeDir, Mode: 0o755},
		{Path: "a/b", Type: tar.TypeReg, Mode: 0o644, Data: "lower"},
		{Path: "a/keep", Type: tar.TypeReg, Mode: 0o644, Data: "lower"},
		{Path: "c", Type: tar.TypeDir, Mode: 0o755},
		{Path: "c/old", Type: tar.TypeReg, Mode: 0o644},
		{Path: "c/sub", Type: tar.TypeDir, Mode: 0o755},
		{Path: "c/sub/deep", Type: tar.TypeReg, Mode: 0o644},
		{Path: "e", Type: tar.TypeDir, Mode: 0o755},
		{Path: "e/x", Type: tar.TypeReg, Mode: 0o644},
		{Path: "h", Type: tar.TypeDir, Mode: 0o755},
		{Path: "h/old", Type: tar.TypeReg, Mode: 0o644},
		{Path: "i", Type: tar.TypeDir, Mode: 0o755},
		{Path: "i/sub", Type: tar.TypeDir, Mode: 0o755},
		{Path: "i/sub/old", Type: tar.TypeReg, Mode: 0o644},
	}
	type row struct {
		path string
		typ  byte
		x    string // trusted.overlay.opaque
	}
	tests := []struct {
		mode  layer.WhiteoutMode
		lower []layertest.Node
		want  []row
	}{
		{layer.OverlayWhiteouts, nil, []row{
			{"a", tar.TypeDir, ""}, {"a/b", tar.TypeChar, ""},
			{"c", tar.TypeDir, "y"}, {"c/new", tar.TypeReg, ""},
			{"e", tar.TypeChar, ""}, {"f", tar.TypeReg, ""},
			{"h", tar.TypeDir, "y"}, {"h/new", tar.TypeReg, ""},
			{"i", tar.TypeDir, "y"}, {"i/sub", tar.TypeDir, ""}, {"i/sub/new", tar.TypeReg, ""},
		}},
		{layer.MergeWhiteouts, lower, []row{
			{"a", tar.TypeDir, ""}, {"a/keep", tar.TypeReg, ""},
			{"c", tar.TypeDir, ""}, {"c/new", tar.TypeReg, ""},
			{"f", tar.TypeReg, ""},
			{"h", tar.TypeDir, ""}, {"h/new", tar.TypeReg, ""},
			{"i", tar.TypeDir, ""}, {"i/sub", tar.TypeDir, ""}, {"i/sub/new", tar.TypeReg, ""},
		}},
	}
	for _, tt := range tests {
		root := t.TempDir()
		layertest.Build(t, root, tt.lower...)
		if _, err := applyBytes(root, b, layer.ApplyOptions{Whiteout: tt.mode}); err != nil {
			t.Fatalf("Apply(mode %d) = %v", tt.mode, err)
		}
		var got []row
		for _, n := range layertest.Snapshot(t, root) {
			got = append(got, row{n.Path, n.Type, n.Xattrs["trusted.overlay.opaque"]})
			if n.Type == tar.TypeChar && (n.Major != 0 || n.Minor != 0 || n.Mode != 0 || n.UID != 0 || !n.ModTime.Equal(epoch)) {
				t.Errorf("mode %d: whiteout %s = %+v, want 0:0, mode 0, owner 0, mtime epoch", tt.mode, n.Path, n)
			}
		}
		if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(row{})); diff != "" {
			t.Errorf("Apply(mode %d) tree (-want +got):\n%s", tt.mode, diff)
		}
	}
}

// TestApplyReplace: entries over existing paths follow image-spec
// layer.md "Changeset over existing files".
func TestApplyReplace(t *testing.T) {
	t.Parallel()
	uid, gid := os.Getuid(), os.Getgid()
	n := func(p string, typ byte, data string) layertest.Node {
		return layertest.Node{Path: p, Type: typ, Mode: 0o755, UID: uid, GID: gid, Data: data, Target: data}
	}
	e := func(name string, typ byte, s string) layertest.Entry {
		e := layertest.Entry{Name: name, Type: typ, Mode: 0o750, UID: uid, GID: gid, ModTime: old}
		if typ == tar.TypeReg {
			e.Body = s
		} else {
			e.Linkname = s
		}
		return e
	}
	root := t.TempDir()
	target := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(target, []byte("target"), 0o644); err != nil {
		t.Fatal(err)
	}
	layertest.Build(t, root,
		n("dir-to-file", tar.TypeDir, ""), n("dir-to-file/child", tar.TypeReg, "c"),
		n("file-to-dir", tar.TypeReg, "f"),
		n("merged", tar.TypeDir, ""), n("merged/lower", tar.TypeReg, "lower"),
		n("link-to-file", tar.TypeSymlink, target),
		n("file-to-link", tar.TypeReg, "f"),
		n("hard", tar.TypeReg, "old"),
	)
	b := layertest.Tar(t,
		e("dir-to-file", tar.TypeReg, "now a file"),
		e("file-to-dir/", tar.TypeDir, ""),
		e("merged/", tar.TypeDir, ""),
		e("link-to-file", tar.TypeReg, "replaced, not written through"),
		e("file-to-link", tar.TypeSymlink, "elsewhere"),
		e("src", tar.TypeReg, "new"),
		e("hard", tar.TypeLink, "src"),
	)
	if _, err := applyBytes(root, b, layer.ApplyOptions{Whiteout: layer.MergeWhiteouts}); err != nil {
		t.Fatalf("Apply = %v", err)
	}
	var got []string
	for _, s := range layertest.Snapshot(t, root) {
		got = append(got, s.Path+" "+string(s.Type)+" "+s.Data+s.Target)
	}
	want := []string{
		"dir-to-file 0 now a file",
		"file-to-dir 5 ",
		"file-to-link 2 elsewhere",
		"hard 0 new",
		"link-to-file 0 replaced, not written through",
		"merged 5 ",
		"merged/lower 0 lower",
		"src 1 hard",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Apply over existing tree (-want +got):\n%s", diff)
	}
	if b, _ := os.ReadFile(target); string(b) != "target" {
		t.Errorf("symlink target outside the root = %q, want it untouched", b)
	}
	if fi, _ := os.Stat(filepath.Join(root, "merged")); fi.Mode().Perm() != 0o750 {
		t.Errorf("merged directory mode = %v, want the entry's 0750", fi.Mode().Perm())
	}
}
