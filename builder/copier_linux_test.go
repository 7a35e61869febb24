package builder

import (
	"archive/tar"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	bt "minibuild/builder/buildertest"
	"minibuild/internal/testenv"
)

func TestFetch(t *testing.T) {
	t.Parallel()
	modTime := time.Date(2021, 5, 6, 7, 8, 9, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Last-Modified", modTime.Format(http.TimeFormat))
		io.WriteString(w, "content1")
	}))
	defer srv.Close()
	const sum = "sha256:0ebb9c50e6ad9bb6e8d1e1fb1c6e7d0d36e63a0ab4c5e4797e9c0d1d16b7ad3d"
	dir := t.TempDir()
	f, err := Fetch(t.Context(), srv.Client(), srv.URL+"/path/foo?x=1", "", dir)
	if err != nil {
		t.Fatal(err)
	}
	if f.Name != "foo" || !strings.HasPrefix(f.Digest, "sha256:") {
		t.Errorf("Fetch = %+v, want name foo and a sha256 digest", f)
	}
	fi, err := os.Stat(f.File)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || !fi.ModTime().Equal(modTime) {
		t.Errorf("downloaded file mode %v mtime %v, want 0600 and Last-Modified %v", fi.Mode(), fi.ModTime(), modTime)
	}
	if g, err := Fetch(t.Context(), srv.Client(), srv.URL, f.Digest, dir); err != nil || g.Name != "__unnamed__" {
		t.Errorf("Fetch(root URL, right checksum) = %+v, %v; want __unnamed__", g, err)
	}
	if _, err := Fetch(t.Context(), srv.Client(), srv.URL+"/foo", sum, dir); err == nil || !strings.Contains(err.Error(), "digest mismatch") {
		t.Errorf("Fetch with a wrong checksum = %v, want digest mismatch", err)
	}
	if _, err := Fetch(t.Context(), srv.Client(), srv.URL+"/missing", "", dir); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("Fetch of a missing URL = %v, want the status", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("download dir holds %d files, want 2 (failed downloads removed)", len(entries))
	}
}

func TestOpenTar(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tarball := tarBytes(t, tarFile("foo", "x", 0o644))
	for name, content := range map[string][]byte{
		"empty.tar.gz": nil,
		"text.tar":     []byte("just text, not an archive\n"),
		"lone.gz":      gzipBytes(t, []byte("not a tar inside")),
		"t.tar":        tarball,
		"t.tgz":        gzipBytes(t, tarball),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		ts, ok, err := openTar(f)
		wantOK := strings.HasPrefix(name, "t.")
		if err != nil || ok != wantOK {
			t.Errorf("openTar(%s) = %v, %v; want archive=%v", name, ok, err, wantOK)
		}
		if ok {
			if ts.first.Name != "foo" {
				t.Errorf("openTar(%s) first entry %q", name, ts.first.Name)
			}
			if err := ts.finish(); err != nil {
				t.Errorf("finish(%s) = %v", name, err)
			}
		} else if off, _ := f.Seek(0, io.SeekCurrent); off != 0 {
			t.Errorf("openTar(%s) left the file at %d, want it rewound", name, off)
		}
		f.Close()
	}
}

func TestResolveOwner(t *testing.T) {
	t.Parallel()
	ids := FileLookup{Open: func(name string) (io.ReadCloser, error) {
		switch name {
		case "/etc/passwd":
			return io.NopCloser(strings.NewReader("# comment\nroot:x:0:0::/:/bin/sh\napp:x:1000:1001::/:/bin/sh\nbad:x:nan:1::/:\n")), nil
		case "/etc/group":
			return io.NopCloser(strings.NewReader("root:x:0:\nstaff:x:50:app\n")), nil
		}
		return nil, os.ErrNotExist
	}}
	tests := []struct {
		spec    string
		want    Owner
		wantErr bool
	}{
		{"app", Owner{1000, 1001}, false},
		{"app:", Owner{1000, 1001}, false},
		{"app:staff", Owner{1000, 50}, false},
		{"1234", Owner{1234, 1234}, false},
		{"1234:", Owner{1234, 1234}, false},
		{"1234:staff", Owner{1234, 50}, false},
		{"root:root", Owner{0, 0}, false},
		{"5:6", Owner{5, 6}, false},
		{"ghost", Owner{}, true},
		{"app:ghosts", Owner{}, true},
		{"bad", Owner{}, true},
		{":staff", Owner{}, true},
	}
	for _, tc := range tests {
		got, err := ResolveOwner(tc.spec, ids)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ResolveOwner(%q) = %v, %v; want %v (error %v)", tc.spec, got, err, tc.want, tc.wantErr)
		}
		if err != nil && !errors.Is(err, ErrNotFound) && tc.spec != ":staff" {
			t.Errorf("ResolveOwner(%q) error %v does not wrap ErrNotFound", tc.spec, err)
		}
	}
	empty := FileLookup{Open: func(string) (io.ReadCloser, error) { return nil, os.ErrNotExist }}
	if _, err := ResolveOwner("app", empty); !errors.Is(err, ErrNotFound) {
		t.Errorf("ResolveOwner in an image without /etc/passwd = %v, want ErrNotFound", err)
	}
}

func TestRootResolve(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bt.Create(t, dir, bt.Dir("a/b", 0o755), bt.Symlink("abs", "/a"), bt.Symlink("a/up", "../../../.."),
		bt.Symlink("loop1", "loop2"), bt.Symlink("loop2", "loop1"), bt.File("f", "", 0o644))
	r, err := openRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	for in, want := range map[string]string{
		"/abs/b":         "a/b",
		"a/up/a/b":       "a/b",
		"/../../a":       "a",
		"abs/new/x":      "a/new/x",
		"a/up/new/../c":  "c",
		"/":              "",
		"a/b/../../abs/": "a",
	} {
		got, err := r.resolve(in)
		if err != nil || got != want {
			t.Errorf("resolve(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := r.resolve("loop1/x"); err == nil {
		t.Error("resolve through a symlink loop succeeded")
	}
}

func TestExtractRefusesEscapes(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	for name, entries := range map[string][]tarEntry{
		"dotdot entry":   {tarFile("../evil", "x", 0o644)},
		"dotdot symlink": {tarEntry{hdr: tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "../../../../etc"}}},
		"dotdot link":    {tarEntry{hdr: tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "../outside"}}},
	} {
		ctx := t.TempDir()
		root := t.TempDir()
		if err := os.WriteFile(filepath.Join(ctx, "a.tar"), tarBytes(t, entries...), 0o644); err != nil {
			t.Fatal(err)
		}
		op := &CopyOp{Add: true, Unpack: true, Sources: []string{"a.tar"}, Dest: "/x/"}
		err := Copy(t.Context(), root, CopyRequest{Op: op, Src: Tree{Dir: ctx, Kind: ContextTree}})
		if !errors.Is(err, ErrUnsafePath) {
			t.Errorf("%s: Copy = %v, want ErrUnsafePath", name, err)
		}
	}
	// A symlink inside the destination cannot lead an entry out of it.
	ctx, root, outside := t.TempDir(), t.TempDir(), t.TempDir()
	tarball := tarBytes(t, tarEntry{hdr: tar.Header{Name: "out", Typeflag: tar.TypeSymlink, Linkname: outside}},
		tarFile("out/pwned", "x", 0o644))
	if err := os.WriteFile(filepath.Join(ctx, "a.tar"), tarball, 0o644); err != nil {
		t.Fatal(err)
	}
	op := &CopyOp{Add: true, Unpack: true, Sources: []string{"a.tar"}, Dest: "/"}
	if err := Copy(t.Context(), root, CopyRequest{Op: op, Src: Tree{Dir: ctx, Kind: ContextTree}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(outside, "pwned")); err == nil {
		t.Fatal("an archive entry was written through an absolute symlink outside the root")
	}
	if _, err := os.Stat(filepath.Join(root, outside, "pwned")); err != nil {
		t.Errorf("entry not placed inside the root: %v", err)
	}
}

// TestCopyIntoEscapingSymlink checks that destination symlinks in the
// image never lead out of the root, whatever they point at.
func TestCopyIntoEscapingSymlink(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	ctx, root, outside := t.TempDir(), t.TempDir(), t.TempDir()
	bt.Create(t, ctx, bt.File("a", "x", 0o644))
	bt.Create(t, root, bt.Symlink("abs", outside), bt.Symlink("rel", "../../../../../.."+outside))
	for _, dest := range []string{"/abs/", "/rel/", "/abs/sub/a"} {
		op := &CopyOp{Sources: []string{"a"}, Dest: dest}
		if err := Copy(t.Context(), root, CopyRequest{Op: op, Src: Tree{Dir: ctx, Kind: ContextTree}}); err != nil {
			t.Fatalf("Copy to %s: %v", dest, err)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("Copy wrote outside the root: %v", entries)
	}
	got := bt.Read(t, filepath.Join(root, outside))
	want := []bt.Entry{bt.File("a", "x", 0o644), bt.Dir("sub", 0o755), bt.File("sub/a", "x", 0o644)}
	if diff := cmp.Diff(bt.Format(want), bt.Format(got)); diff != "" {
		t.Errorf("tree inside the root (-want +got):\n%s", diff)
	}
}

func TestMkdirExisting(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	root := t.TempDir()
	bt.Create(t, root, bt.Dir("w", 0o700).Owned(5, 5), bt.File("f", "", 0o644))
	if err := Mkdir(t.Context(), root, &WorkdirOp{Path: "/w", User: "1000"}, nil); err != nil {
		t.Fatal(err)
	}
	got := bt.Read(t, root)
	if got[1].Mode != 0o700 || got[1].UID != 5 {
		t.Errorf("existing directory changed: %v", got[1])
	}
	if err := Mkdir(t.Context(), root, &WorkdirOp{Path: "/f/x"}, nil); err == nil {
		t.Error("Mkdir through a file succeeded")
	}
}
