package builder

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// layerEntries lists a gzip layer blob of the store: path → "type mode
// uid:gid" (type d, f or l).
func (e *engine) layerEntries(d v1.Hash) map[string]string {
	e.t.Helper()
	rc, err := e.store.OpenBlob(d)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			e.t.Fatal(err)
		}
		kind := map[byte]string{tar.TypeDir: "d", tar.TypeReg: "f", tar.TypeSymlink: "l"}[h.Typeflag]
		out[h.Name] = fmt.Sprintf("%s %04o %d:%d", kind, h.Mode&0o7777, h.Uid, h.Gid)
	}
}

// TestLinkLayerParents checks what a COPY --link layer holds: the
// directories above the one the copy goes into as default directories
// (0755 even with an octal --chmod, which applies to what is copied and
// the directory it goes into; owned by root or the --chown owner), and
// the destination path as directories, not through the base's symlink
// there. A plain COPY --chmod creates every missing parent with the
// --chmod mode, like BuildKit.
func TestLinkLayerParents(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	e.busybox()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f"), "f\n")
	writeFile(t, filepath.Join(dir, "d/g"), "g\n")
	df := "FROM busybox\nRUN mkdir -p /srv/app && ln -s /srv/app /opt\n" +
		"COPY --link --chmod=0600 f /opt/m/f\n" +
		"COPY --link --chmod=0700 d/ /srv/x/d/\n" +
		"COPY --link --chown=7:8 f /usr/local/x/f\n" +
		"COPY --chmod=0600 f /plain/m/f\n"
	res := e.mustBuild(dir, df, Request{})
	_, m := e.image(res.Manifest.Digest)
	n := len(m.Layers)
	for _, tc := range []struct {
		layer int // from the top
		want  map[string]string
	}{
		{4, map[string]string{"opt/": "d 0755 0:0", "opt/m/": "d 0600 0:0", "opt/m/f": "f 0600 0:0"}},
		{3, map[string]string{"srv/": "d 0755 0:0", "srv/x/": "d 0755 0:0", "srv/x/d/": "d 0700 0:0", "srv/x/d/g": "f 0700 0:0"}},
		{2, map[string]string{"usr/": "d 0755 7:8", "usr/local/": "d 0755 7:8", "usr/local/x/": "d 0755 7:8", "usr/local/x/f": "f 0644 7:8"}},
		{1, map[string]string{"plain/": "d 0600 0:0", "plain/m/": "d 0600 0:0", "plain/m/f": "f 0600 0:0"}},
	} {
		got := e.layerEntries(m.Layers[n-tc.layer].Digest)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("layer %d from the top (-want +got):\n%s", tc.layer, diff)
		}
	}
}
