package layer_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"

	"minibuild/layer"
	"minibuild/layer/layertest"
)

func TestEntries(t *testing.T) {
	t.Parallel()
	raw := layertest.Tar(t,
		layertest.Entry{Name: "./etc/", Type: tar.TypeDir, Mode: 0o755},
		layertest.Entry{Name: "etc/.wh..wh..opq"},
		layertest.Entry{Name: "etc/passwd", Mode: 0o644, UID: 1, GID: 2, Body: "root", Xattrs: map[string]string{"user.a": "b"}},
		layertest.Entry{Name: "/etc/.wh.shadow"},
		layertest.Entry{Name: "etc/.wh..wh.plnk"},
		layertest.Entry{Name: "bin/sh", Type: tar.TypeSymlink, Mode: 0o777, Linkname: "busybox"},
		layertest.Entry{Name: "bin/ash", Type: tar.TypeLink, Linkname: "./bin/sh"},
	)
	want := []layer.Entry{
		{Path: "etc", Type: tar.TypeDir, Mode: 0o755},
		{Path: "etc", Type: tar.TypeReg, Opaque: true},
		{Path: "etc/passwd", Type: tar.TypeReg, Mode: 0o644, UID: 1, GID: 2, Size: 4, Xattrs: map[string]string{"user.a": "b"}},
		{Path: "etc/shadow", Type: tar.TypeReg, Whiteout: true},
		{Path: "bin/sh", Type: tar.TypeSymlink, Mode: 0o777, Linkname: "busybox"},
		{Path: "bin/ash", Type: tar.TypeLink, Linkname: "bin/sh"},
	}
	for name, b := range map[string][]byte{"none": raw, "gzip": layertest.Gzip(t, raw), "zstd": layertest.Zstd(t, raw)} {
		var got []layer.Entry
		var bodies []string
		err := layer.Entries(context.Background(), bytes.NewReader(b), func(e layer.Entry, r io.Reader) error {
			got = append(got, e)
			body, err := io.ReadAll(r)
			bodies = append(bodies, string(body))
			return err
		})
		if err != nil {
			t.Fatalf("Entries(%s) = %v", name, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Entries(%s) (-want +got):\n%s", name, diff)
		}
		if len(bodies) > 2 && bodies[2] != "root" {
			t.Errorf("Entries(%s): etc/passwd content = %q, want %q", name, bodies[2], "root")
		}
	}
}

func TestEntriesErrors(t *testing.T) {
	t.Parallel()
	stop := errors.New("stop")
	tests := []struct {
		name  string
		layer []byte
		fn    func(layer.Entry, io.Reader) error
		want  error
	}{
		{"callback error", layertest.Tar(t, layertest.Entry{Name: "a"}, layertest.Entry{Name: "b"}),
			func(layer.Entry, io.Reader) error { return stop }, stop},
		{"escaping name", layertest.Tar(t, layertest.Entry{Name: "../a"}), nil, layer.ErrUnsafePath},
		{"escaping hardlink", layertest.Tar(t, layertest.Entry{Name: "a", Type: tar.TypeLink, Linkname: "../../x"}), nil, layer.ErrUnsafePath},
	}
	for _, tt := range tests {
		fn := tt.fn
		if fn == nil {
			fn = func(layer.Entry, io.Reader) error { return nil }
		}
		if err := layer.Entries(context.Background(), bytes.NewReader(tt.layer), fn); !errors.Is(err, tt.want) {
			t.Errorf("Entries(%s) = %v, want %v", tt.name, err, tt.want)
		}
	}
	truncated := layertest.Gzip(t, layertest.Tar(t, layertest.Entry{Name: "a", Body: string(randomBytes(9, 100000))}))
	err := layer.Entries(context.Background(), bytes.NewReader(truncated[:len(truncated)/2]), func(_ layer.Entry, r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	})
	if err == nil {
		t.Errorf("Entries(truncated gzip) = nil, want an error")
	}
}
