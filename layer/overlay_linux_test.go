//go:build linux

package layer_test

import (
	"archive/tar"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"minibuild/internal/testenv"
	"minibuild/layer"
	"minibuild/layer/layertest"
)

// baseTree is the lower layer of TestOverlayRoundTrip.
func baseTree() []layertest.Node {
	d := func(p string) layertest.Node {
		return layertest.Node{Path: p, Type: tar.TypeDir, Mode: 0o755, ModTime: old}
	}
	f := func(p, data string) layertest.Node {
		return layertest.Node{Path: p, Type: tar.TypeReg, Mode: 0o644, Data: data, ModTime: old}
	}
	return []layertest.Node{
		d("etc"), f("etc/motd", "hello"), f("etc/passwd", "root:x:0:0\n"), f("etc/hosts", "127.0.0.1\n"),
		{Path: "etc/hosts.bak", Type: tar.TypeLink, Target: "etc/hosts"},
		{Path: "etc/localtime", Type: tar.TypeSymlink, Target: "/usr/share/zoneinfo/UTC", ModTime: old},
		d("opt"), d("opt/tool"), d("opt/tool/bin"), f("opt/tool/bin/x", "x"), f("opt/tool/README", "r"),
		d("var"), d("var/cache"), f("var/cache/a", "a"), d("var/cache/sub"), f("var/cache/sub/b", "b"),
		{Path: "var/fifo", Type: tar.TypeFifo, Mode: 0o600, ModTime: old},
	}
}

// TestOverlayRoundTrip makes changes through a real overlay mount, diffs
// the upperdir, and checks that the layer's OCI whiteouts are exactly the
// expected ones and that applying base + diff (as overlay snapshots, and
// merged into one directory) reproduces the merged view entry for entry.
func TestOverlayRoundTrip(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	tmp := t.TempDir()
	dirs := map[string]string{}
	for _, name := range []string{"lower", "upper", "work", "merged", "view", "snapbase", "snapdiff", "viewsnap", "flat"} {
		dirs[name] = filepath.Join(tmp, name)
		if err := os.Mkdir(dirs[name], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	layertest.Build(t, dirs["lower"], baseTree()...)

	// Change the tree through the mount, as a RUN step would.
	layertest.MountOverlay(t, dirs["merged"], []string{dirs["lower"]}, dirs["upper"], dirs["work"])
	m := func(p string) string { return filepath.Join(dirs["merged"], p) }
	must(t, os.Remove(m("etc/motd")))                                 // delete a file
	must(t, os.WriteFile(m("etc/new.conf"), []byte("new"), 0o640))    // add one
	must(t, os.Chmod(m("etc/passwd"), 0o600))                         // copy-up of metadata
	must(t, os.RemoveAll(m("opt/tool")))                              // replace a dir...
	must(t, os.WriteFile(m("opt/tool"), []byte("now a file"), 0o755)) // ...with a file
	must(t, os.RemoveAll(m("var/cache")))                             // rm -rf a dir...
	must(t, os.Mkdir(m("var/cache"), 0o700))                          // ...and recreate it
	must(t, os.WriteFile(m("var/cache/new"), []byte("fresh"), 0o644)) //
	layertest.Unmount(t, dirs["merged"])

	_, diffLayer := diffBytes(t, dirs["upper"], layer.DiffOptions{Normalize: true})
	type row struct{ Name, Body string }
	var got []row
	for _, e := range layertest.List(t, diffLayer) {
		got = append(got, row{e.Name, e.Body})
		if e.Xattrs != nil {
			t.Errorf("%s carries xattrs %v, want overlay's dropped", e.Name, e.Xattrs)
		}
	}
	want := []row{
		{"etc/", ""}, {"etc/.wh.motd", ""}, {"etc/new.conf", "new"}, {"etc/passwd", "root:x:0:0\n"},
		{"opt/", ""}, {"opt/tool", "now a file"},
		{"var/", ""}, {"var/cache/", ""}, {"var/cache/.wh..wh..opq", ""}, {"var/cache/new", "fresh"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Diff(upperdir) entries (-want +got):\n%s", diff)
	}

	// The merged view as the build saw it (normalized upper over lower).
	layertest.MountOverlay(t, dirs["view"], []string{dirs["upper"], dirs["lower"]}, "", "")
	wantView := layertest.Snapshot(t, dirs["view"])
	seen := map[string]byte{}
	for _, n := range wantView {
		seen[n.Path] = n.Type
	}
	if _, ok := seen["etc/motd"]; ok || seen["opt/tool"] != tar.TypeReg || seen["var/cache/a"] != 0 || seen["var/cache/new"] != tar.TypeReg {
		t.Fatalf("merged view does not show the changes: %v", seen)
	}

	// Snapshots of base + diff, stacked by overlay.
	_, baseLayer := diffBytes(t, dirs["lower"], layer.DiffOptions{Compression: layer.Zstd})
	apply := func(root string, b []byte, mode layer.WhiteoutMode) {
		if _, err := applyBytes(root, b, layer.ApplyOptions{Whiteout: mode}); err != nil {
			t.Fatalf("Apply to %s = %v", root, err)
		}
	}
	apply(dirs["snapbase"], baseLayer, layer.OverlayWhiteouts)
	apply(dirs["snapdiff"], diffLayer, layer.OverlayWhiteouts)
	layertest.MountOverlay(t, dirs["viewsnap"], []string{dirs["snapdiff"], dirs["snapbase"]}, "", "")
	if diff := cmp.Diff(wantView, layertest.Snapshot(t, dirs["viewsnap"])); diff != "" {
		t.Errorf("overlay of applied snapshots vs original merged view (-original +applied):\n%s", diff)
	}

	// Flattened, as for a rootfs export.
	apply(dirs["flat"], baseLayer, layer.MergeWhiteouts)
	apply(dirs["flat"], diffLayer, layer.MergeWhiteouts)
	if diff := cmp.Diff(wantView, layertest.Snapshot(t, dirs["flat"])); diff != "" {
		t.Errorf("flattened layers vs original merged view (-original +flattened):\n%s", diff)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
