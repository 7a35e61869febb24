//go:build linux

package cache_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"minibuild/cache"
	"minibuild/cache/cachetest"
)

func scanDir(t *testing.T, dir string, opts cache.ScanOptions) []cache.File {
	t.Helper()
	files, err := cache.Scan(context.Background(), dir, opts)
	if err != nil {
		t.Fatalf("Scan(%s) = %v", dir, err)
	}
	return files
}

func TestScanListing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cachetest.WriteTree(t, dir, map[string]cachetest.Entry{
		"a.txt":          {Content: "hello"},
		"a/b.sh":         {Content: "#!/bin/sh\n", Mode: 0o755},
		"a/setuid":       {Content: "x", Mode: os.ModeSetuid | 0o755},
		"a/empty":        {Dir: true, Mode: 0o700},
		"link":           {Link: "a/b.sh"},
		"dirlink":        {Link: "a"},
		"dangling":       {Link: "/nonexistent/../x"},
		"sub/dir/f":      {Content: ""},
		"sub/dir/g.tmp":  {Content: "ignored"},
		"skip/secret":    {Content: "never read"},
		"keep/x/wanted":  {Content: "w"},
		"keep/x/dropped": {Content: "d"},
	})
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o640); err != nil {
		t.Fatal(err)
	}
	if l, err := net.Listen("unix", filepath.Join(dir, "sock")); err == nil {
		defer l.Close()
	}
	// a/empty keeps its 0700: WriteTree chmods after creating.
	sel := func(rel string, isDir bool) (bool, bool) {
		switch {
		case strings.HasSuffix(rel, ".tmp"), rel == "skip":
			return false, false
		case rel == "keep" || rel == "keep/x":
			return false, true // excluded, but a child is re-included
		case strings.HasPrefix(rel, "keep/"):
			return rel == "keep/x/wanted", false
		}
		return true, true
	}
	got := scanDir(t, dir, cache.ScanOptions{Select: sel})
	want := []cache.File{
		{Path: "a", Type: cache.TypeDir, Mode: 0o755},
		{Path: "a.txt", Type: cache.TypeFile, Mode: 0o644, Size: 5, Digest: sha("hello")},
		{Path: "a/b.sh", Type: cache.TypeFile, Mode: 0o755, Size: 10, Digest: sha("#!/bin/sh\n")},
		{Path: "a/empty", Type: cache.TypeDir, Mode: 0o700},
		{Path: "a/setuid", Type: cache.TypeFile, Mode: 0o4755, Size: 1, Digest: sha("x")},
		{Path: "dangling", Type: cache.TypeSymlink, Mode: 0o777, Linkname: "/nonexistent/../x"},
		{Path: "dirlink", Type: cache.TypeSymlink, Mode: 0o777, Linkname: "a"},
		{Path: "fifo", Type: cache.TypeFifo, Mode: 0o640},
		{Path: "keep/x/wanted", Type: cache.TypeFile, Mode: 0o644, Size: 1, Digest: sha("w")},
		{Path: "link", Type: cache.TypeSymlink, Mode: 0o777, Linkname: "a/b.sh"},
		{Path: "sub", Type: cache.TypeDir, Mode: 0o755},
		{Path: "sub/dir", Type: cache.TypeDir, Mode: 0o755},
		{Path: "sub/dir/f", Type: cache.TypeFile, Mode: 0o644, Digest: sha("")},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Scan mismatch (-want +got):\n%s", diff)
	}
	// Through a symlink to the directory: the same listing.
	alias := filepath.Join(t.TempDir(), "alias")
	if err := os.Symlink(dir, alias); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, scanDir(t, alias, cache.ScanOptions{Select: sel}), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Scan through a symlinked root differs:\n%s", diff)
	}
}

func TestScanXattrs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cachetest.WriteTree(t, dir, map[string]cachetest.Entry{"f": {Content: "x"}, "d": {Dir: true}})
	if err := syscall.Setxattr(filepath.Join(dir, "f"), "user.mime", []byte("text/plain"), 0); err != nil {
		t.Skipf("no user xattrs here: %v", err)
	}
	if err := syscall.Setxattr(filepath.Join(dir, "d"), "user.tag", []byte{0, 1, 2}, 0); err != nil {
		t.Fatal(err)
	}
	// Host-only xattrs are not keyed (a layer drops them too).
	hostOnly := syscall.Setxattr(filepath.Join(dir, "d"), "trusted.overlay.opaque", []byte("y"), 0)
	got := scanDir(t, dir, cache.ScanOptions{})
	if want := map[string]string{"user.mime": "text/plain"}; !cmp.Equal(got[1].Xattrs, want) {
		t.Errorf("xattrs of f = %v, want %v", got[1].Xattrs, want)
	}
	if want := map[string]string{"user.tag": "\x00\x01\x02"}; !cmp.Equal(got[0].Xattrs, want) {
		t.Errorf("xattrs of d = %v, want %v (trusted.overlay set: %v)", got[0].Xattrs, want, hostOnly == nil)
	}
	before := cache.Digest(got)
	if err := syscall.Setxattr(filepath.Join(dir, "f"), "user.mime", []byte("text/html"), 0); err != nil {
		t.Fatal(err)
	}
	if cache.Digest(scanDir(t, dir, cache.ScanOptions{})) == before {
		t.Errorf("Digest unchanged after an xattr change")
	}
}

// TestScanShapes covers the scheduler: big files hashed as their own
// tasks, more directories than descriptors kept queued, deep nesting, and
// several job counts giving the same result.
func TestScanShapes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tree := map[string]cachetest.Entry{}
	for i := range 600 {
		tree[fmt.Sprintf("wide/d%03d/f", i)] = cachetest.Entry{Content: fmt.Sprint(i)}
	}
	// More entries than one getdents buffer holds.
	for i := range 2500 {
		tree[fmt.Sprintf("flat/a-rather-long-file-name-%04d", i)] = cachetest.Entry{Content: fmt.Sprint(i)}
	}
	deep := "deep"
	for i := range 40 {
		deep += fmt.Sprintf("/%d", i)
	}
	tree[deep+"/leaf"] = cachetest.Entry{Content: "leaf"}
	big := strings.Repeat("0123456789abcdef", 5<<16) // 5 MiB
	tree["big/one"] = cachetest.Entry{Content: big}
	tree["big/two"] = cachetest.Entry{Content: big + "!"}
	cachetest.WriteTree(t, dir, tree)
	var first []cache.File
	for _, jobs := range []int{1, 2, 8} {
		got := scanDir(t, dir, cache.ScanOptions{Jobs: jobs})
		if want := 1 + 600*2 + 1 + 2500 + 41 + 1 + 3; len(got) != want {
			t.Errorf("Jobs %d: %d entries, want %d", jobs, len(got), want)
		}
		for i := 1; i < len(got); i++ {
			if got[i-1].Path >= got[i].Path {
				t.Fatalf("Jobs %d: %q listed before %q", jobs, got[i-1].Path, got[i].Path)
			}
		}
		if first == nil {
			first = got
			for _, f := range got {
				if f.Path == "big/two" && f.Digest != sha(big+"!") {
					t.Errorf("big file digest = %s", f.Digest)
				}
			}
			continue
		}
		if diff := cmp.Diff(first, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Jobs %d differs from Jobs 1:\n%s", jobs, diff)
		}
	}
}

func TestScanErrors(t *testing.T) {
	t.Parallel()
	if _, err := cache.Scan(context.Background(), filepath.Join(t.TempDir(), "missing"), cache.ScanOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Scan(missing dir) = %v, want ErrNotExist", err)
	}
	dir := t.TempDir()
	cachetest.WriteTree(t, dir, map[string]cachetest.Entry{"a/b": {Content: "x"}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := cache.Scan(ctx, dir, cache.ScanOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Scan(cancelled) = %v, want context.Canceled", err)
	}
}

// TestScanMtimeNeverKeyed: a touch changes no digest; content with the
// same size does.
func TestScanMtimeNeverKeyed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cachetest.WriteTree(t, dir, map[string]cachetest.Entry{"src/main.go": {Content: "package main"}, "src": {Dir: true}})
	before := cache.Digest(scanDir(t, dir, cache.ScanOptions{}))
	for _, p := range []string{"src", "src/main.go"} {
		if err := os.Chtimes(filepath.Join(dir, p), time.Unix(1, 0), time.Unix(2, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if after := cache.Digest(scanDir(t, dir, cache.ScanOptions{})); after != before {
		t.Errorf("Digest changed after touching files")
	}
	if err := os.WriteFile(filepath.Join(dir, "src/main.go"), []byte("package mian"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(filepath.Join(dir, "src/main.go"), time.Unix(1, 0), time.Unix(2, 0))
	if after := cache.Digest(scanDir(t, dir, cache.ScanOptions{})); after == before {
		t.Errorf("Digest unchanged after a same-size, same-mtime edit")
	}
}

// TestScanOrder: the depth-first assembly gives byte-wise full-path
// order even for names that sort around "/".
func TestScanOrder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tree := map[string]cachetest.Entry{}
	names := []string{"a", "a!", "a-", "a.", "a.txt", "a0", "ab", "a~", "é", "Z", " sp", "a\x01"}
	for _, n := range names {
		tree["d/"+n] = cachetest.Entry{Content: n}
		tree[n+"/-"] = cachetest.Entry{Content: n}
		tree[n+"/x.txt"] = cachetest.Entry{Content: n}
		tree[n+"/x/y"] = cachetest.Entry{Content: n}
	}
	cachetest.WriteTree(t, dir, tree)
	got := scanDir(t, dir, cache.ScanOptions{})
	for i := 1; i < len(got); i++ {
		if got[i-1].Path >= got[i].Path {
			t.Errorf("%q listed before %q", got[i-1].Path, got[i].Path)
		}
	}
	if want := len(names)*6 + 1; len(got) != want {
		t.Errorf("%d entries, want %d", len(got), want)
	}
}

// TestScanClosesDescriptors: every directory held open between the two
// passes, or reopened when too many are, is closed at the end, also when
// the scan fails. Not parallel: it counts the process's descriptors.
func TestScanClosesDescriptors(t *testing.T) {
	dir := t.TempDir()
	tree := map[string]cachetest.Entry{}
	for i := range 700 { // more directories than a scan keeps open
		tree[fmt.Sprintf("d%03d/f", i)] = cachetest.Entry{Content: fmt.Sprint(i)}
	}
	cachetest.WriteTree(t, dir, tree)
	open := func() int {
		entries, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(entries)
	}
	before := open()
	if got := scanDir(t, dir, cache.ScanOptions{Jobs: 3}); len(got) != 1400 {
		t.Errorf("%d entries, want 1400", len(got))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := cache.Scan(ctx, dir, cache.ScanOptions{}); err == nil {
		t.Errorf("Scan(cancelled) succeeded")
	}
	if after := open(); after != before {
		t.Errorf("%d descriptors open after the scans, %d before", after, before)
	}
}
