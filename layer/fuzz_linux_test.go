//go:build linux

package layer_test

import (
	"archive/tar"
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"minibuild/layer"
	"minibuild/layer/layertest"
)

// FuzzApply: whatever the bytes, Apply creates or changes nothing outside
// its root. The root is <tmp>/root next to <tmp>/outside/{sentinel,sub/file};
// after Apply (error or not) everything under <tmp> but the root's
// contents must be as before. Run with `make fuzz` or
// `go test -fuzz FuzzApply -fuzzminimizetime 10s ./layer` (every run makes
// and removes a small tree, so minimizing is slow). As root it also covers
// owners, devices and whiteout devices.
func FuzzApply(f *testing.F) {
	for _, tc := range escapeCases() {
		entries := make([]layertest.Entry, len(tc.entries))
		for i, e := range tc.entries {
			// The outside dir's real path changes per run; seeds point
			// at where it would be from the root's point of view.
			e.Name = strings.ReplaceAll(e.Name, outsideMarker, "/../outside")
			e.Linkname = strings.ReplaceAll(e.Linkname, outsideMarker, "/../outside")
			entries[i] = e
		}
		b := layertest.Tar(f, entries...)
		f.Add(b, uint8(0))
		f.Add(b, uint8(1))
	}
	normal := layertest.Tar(f,
		layertest.Entry{Name: "etc/", Type: tar.TypeDir, Mode: 0o755},
		layertest.Entry{Name: "etc/passwd", Mode: 0o644, Body: "root:x:0:0\n"},
		layertest.Entry{Name: "etc/.wh.shadow"},
		layertest.Entry{Name: "etc/.wh..wh..opq"},
		layertest.Entry{Name: "bin/sh", Type: tar.TypeSymlink, Linkname: "busybox"},
		layertest.Entry{Name: "bin/ash", Type: tar.TypeLink, Linkname: "bin/sh"},
		layertest.Entry{Name: "dev/null", Type: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
	)
	f.Add(normal, uint8(0))
	f.Add(layertest.Gzip(f, normal), uint8(1))
	f.Add(layertest.Zstd(f, normal), uint8(0))

	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		parent, root, _ := escapeFixture(t)
		before := rootBoundary(snapshotOutside(t, parent))
		opts := layer.ApplyOptions{Whiteout: layer.WhiteoutMode(mode % 2), MaxSize: 16 << 20}
		_, err := layer.Apply(context.Background(), root, bytes.NewReader(data), opts)
		if diff := cmp.Diff(before, rootBoundary(snapshotOutside(t, parent))); diff != "" {
			t.Fatalf("Apply (err %v) changed files outside the root (-before +after):\n%s", err, diff)
		}
	})
}

// rootBoundary drops the root directory's own xattrs from a snapshot: an
// opaque marker at the top of a layer sets one there, which is the root's
// business, not an escape. Its type, mode and owner still count.
func rootBoundary(nodes []layertest.Node) []layertest.Node {
	for i := range nodes {
		if nodes[i].Path == "root" {
			nodes[i].Xattrs = nil
		}
	}
	return nodes
}
