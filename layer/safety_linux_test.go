//go:build linux

package layer_test

import (
	"archive/tar"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"minibuild/internal/testenv"
	"minibuild/layer"
	"minibuild/layer/layertest"
)

// outsideMarker in an entry's name or link target stands for the absolute
// path of the directory next to the root that holds the sentinel.
const outsideMarker = "@OUT@"

// escapeCase is one hostile layer. Each is applied to <tmp>/root next to
// <tmp>/outside/sentinel; whatever happens, nothing outside the root may
// change. unsafe cases must fail with ErrUnsafePath; the others may fail
// (a path that resolves nowhere) or succeed, and then inside says what
// must exist inside the root.
type escapeCase struct {
	name    string
	entries []layertest.Entry
	unsafe  bool
	inside  map[string]string // path in root → content ("" for "exists")
}

func escapeCases() []escapeCase {
	file := func(name, body string) layertest.Entry { return layertest.Entry{Name: name, Mode: 0o644, Body: body} }
	dir := func(name string) layertest.Entry { return layertest.Entry{Name: name, Type: tar.TypeDir, Mode: 0o755} }
	sym := func(name, target string) layertest.Entry {
		return layertest.Entry{Name: name, Type: tar.TypeSymlink, Linkname: target}
	}
	hard := func(name, target string) layertest.Entry {
		return layertest.Entry{Name: name, Type: tar.TypeLink, Linkname: target}
	}
	wh := func(name string) layertest.Entry { return layertest.Entry{Name: name} }
	return []escapeCase{
		{name: "dotdot file", entries: []layertest.Entry{file("../outside/sentinel", "pwned")}, unsafe: true},
		{name: "nested dotdot", entries: []layertest.Entry{file("a/../../outside/sentinel", "pwned")}, unsafe: true},
		{name: "dotdot dir", entries: []layertest.Entry{dir("../outside/new/")}, unsafe: true},
		{name: "dotdot symlink entry", entries: []layertest.Entry{sym("../outside/sentinel", "/etc/passwd")}, unsafe: true},
		{name: "dotdot device", entries: []layertest.Entry{{Name: "../outside/dev", Type: tar.TypeChar, Devmajor: 1, Devminor: 3}}, unsafe: true},
		{name: "absolute name", entries: []layertest.Entry{file(outsideMarker+"/sentinel", "contained")},
			inside: map[string]string{outsideMarker + "/sentinel": "contained"}},
		{name: "root replaced by a file", entries: []layertest.Entry{file(".", "x")}, unsafe: true},
		{name: "root replaced by a symlink", entries: []layertest.Entry{sym("/", outsideMarker)}, unsafe: true},
		{name: "write through relative symlink", entries: []layertest.Entry{
			sym("link", "../outside"), file("link/sentinel", "pwned")}},
		{name: "write through relative symlink, target made", entries: []layertest.Entry{
			dir("outside/"), sym("link", "../../../outside"), file("link/sentinel", "contained")},
			inside: map[string]string{"outside/sentinel": "contained"}},
		{name: "write through absolute symlink", entries: []layertest.Entry{
			sym("link", outsideMarker), file("link/sentinel", "pwned")}},
		{name: "write through absolute symlink, target made", entries: []layertest.Entry{
			dir(outsideMarker + "/"), sym("link", outsideMarker), file("link/sentinel", "contained")},
			inside: map[string]string{outsideMarker + "/sentinel": "contained"}},
		{name: "write through symlink chain", entries: []layertest.Entry{
			dir("outside/"), sym("l1", "l2/"), sym("l2", "sub/l3"), dir("sub/"), sym("sub/l3", "../../outside"),
			file("l1/sentinel", "contained")},
			inside: map[string]string{"outside/sentinel": "contained"}},
		{name: "write through symlink chain to absolute", entries: []layertest.Entry{
			sym("l1", "l2"), sym("l2", outsideMarker), file("l1/sentinel", "pwned")}},
		{name: "dir entry through symlink", entries: []layertest.Entry{
			sym("link", outsideMarker), dir("link/newdir/")}},
		{name: "file over symlink to outside file", entries: []layertest.Entry{
			sym("s", outsideMarker+"/sentinel"), file("s", "replaced")},
			inside: map[string]string{"s": "replaced"}},
		{name: "symlink loop", entries: []layertest.Entry{sym("a", "b"), sym("b", "a"), file("a/x", "x")}},
		{name: "file under a file", entries: []layertest.Entry{file("f", "f"), file("f/x", "x")}},
		{name: "hardlink dotdot", entries: []layertest.Entry{hard("h", "../outside/sentinel")}, unsafe: true},
		{name: "hardlink absolute", entries: []layertest.Entry{hard("h", outsideMarker+"/sentinel")}},
		{name: "hardlink through symlink", entries: []layertest.Entry{
			sym("link", outsideMarker), hard("h", "link/sentinel")}},
		{name: "hardlink through relative symlink", entries: []layertest.Entry{
			sym("link", "../outside"), hard("h", "link/sentinel")}},
		{name: "hardlink to symlink, then write", entries: []layertest.Entry{
			sym("s", outsideMarker+"/sentinel"), hard("h", "s"), file("h", "replaced")},
			inside: map[string]string{"h": "replaced"}},
		{name: "hardlink to the root", entries: []layertest.Entry{hard("h", "/")}, unsafe: true},
		{name: "whiteout dotdot", entries: []layertest.Entry{wh("../outside/.wh.sentinel")}, unsafe: true},
		{name: "whiteout dotdot parent", entries: []layertest.Entry{wh("../.wh.outside")}, unsafe: true},
		{name: "whiteout of dotdot", entries: []layertest.Entry{wh("a/.wh..."), wh(".wh..")}, unsafe: true},
		{name: "whiteout through absolute symlink", entries: []layertest.Entry{
			sym("link", outsideMarker), wh("link/.wh.sentinel")}},
		{name: "whiteout through relative symlink", entries: []layertest.Entry{
			sym("link", "../outside"), wh("link/.wh.sentinel")}},
		{name: "whiteout of a symlink to outside", entries: []layertest.Entry{
			sym("link", outsideMarker), wh(".wh.link")}},
		{name: "opaque through symlink", entries: []layertest.Entry{
			sym("link", outsideMarker), wh("link/.wh..wh..opq")}},
		{name: "opaque through relative symlink", entries: []layertest.Entry{
			sym("link", "../outside"), wh("link/.wh..wh..opq")}},
		{name: "hardlink name dotdot", entries: []layertest.Entry{file("f", "f"), hard("../outside/h", "f")}, unsafe: true},
	}
}

func TestApplySafety(t *testing.T) {
	testenv.RequirePrivileged(t) // whiteout devices, opaque xattrs
	t.Parallel()
	for _, tc := range escapeCases() {
		for _, mode := range []layer.WhiteoutMode{layer.OverlayWhiteouts, layer.MergeWhiteouts} {
			t.Run(tc.name+map[layer.WhiteoutMode]string{layer.OverlayWhiteouts: "/overlay", layer.MergeWhiteouts: "/merge"}[mode], func(t *testing.T) {
				t.Parallel()
				parent, root, outside := escapeFixture(t)
				before := snapshotOutside(t, parent)
				entries := make([]layertest.Entry, len(tc.entries))
				for i, e := range tc.entries {
					e.Name = strings.ReplaceAll(e.Name, outsideMarker, outside)
					e.Linkname = strings.ReplaceAll(e.Linkname, outsideMarker, outside)
					e.UID, e.GID = os.Getuid(), os.Getgid()
					entries[i] = e
				}
				_, err := applyBytes(root, layertest.Tar(t, entries...), layer.ApplyOptions{Whiteout: mode})
				if tc.unsafe && !errors.Is(err, layer.ErrUnsafePath) {
					t.Errorf("Apply = %v, want ErrUnsafePath", err)
				}
				if diff := cmp.Diff(before, snapshotOutside(t, parent)); diff != "" {
					t.Fatalf("Apply (err %v) changed files outside the root (-before +after):\n%s", err, diff)
				}
				if err != nil {
					return
				}
				for p, want := range tc.inside {
					p = strings.ReplaceAll(p, outsideMarker, outside)
					got, rerr := os.ReadFile(filepath.Join(root, p))
					if rerr != nil || string(got) != want {
						t.Errorf("inside the root, %s = %q, %v, want %q", p, got, rerr, want)
					}
				}
			})
		}
	}
}

// escapeFixture makes <tmp>/root (empty) next to <tmp>/outside with a
// sentinel file and a subdirectory.
func escapeFixture(t testing.TB) (parent, root, outside string) {
	t.Helper()
	parent = t.TempDir()
	root, outside = filepath.Join(parent, "root"), filepath.Join(parent, "outside")
	layertest.Build(t, parent,
		layertest.Node{Path: "root", Type: tar.TypeDir, Mode: 0o755, UID: os.Getuid(), GID: os.Getgid()},
		layertest.Node{Path: "outside", Type: tar.TypeDir, Mode: 0o755, UID: os.Getuid(), GID: os.Getgid(), ModTime: old},
		layertest.Node{Path: "outside/sentinel", Type: tar.TypeReg, Mode: 0o644, UID: os.Getuid(), GID: os.Getgid(), Data: "keep", ModTime: old},
		layertest.Node{Path: "outside/sub", Type: tar.TypeDir, Mode: 0o755, UID: os.Getuid(), GID: os.Getgid(), ModTime: old},
		layertest.Node{Path: "outside/sub/file", Type: tar.TypeReg, Mode: 0o644, UID: os.Getuid(), GID: os.Getgid(), Data: "keep", ModTime: old},
	)
	return parent, root, outside
}

// snapshotOutside describes everything under parent except the root's
// contents (the root directory itself is listed: it must stay a
// directory).
func snapshotOutside(t testing.TB, parent string) []layertest.Node {
	t.Helper()
	out := layertest.Snapshot(t, parent, "root")
	for i := range out {
		if out[i].Path == "root" {
			out[i].ModTime = old // changes whenever an entry is created in it
		}
	}
	return out
}
