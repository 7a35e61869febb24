//go:build linux

package layer_test

import (
	"archive/tar"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"minibuild/internal/testenv"
	"minibuild/layer"
	"minibuild/layer/layertest"
)

// reproTree is what TestDiffReproducible builds twice. Everything a plain
// user can create: the test needs no privileges. Files newer than the epoch
// get their mtime from the caller; the rest keep a fixed old one.
func reproTree(mtime time.Time) []layertest.Node {
	big := randomBytes(42, 3<<20+12345)                        // several gzip blocks
	big = append(big, []byte(strings.Repeat("text ", 2e5))...) // and compressible data
	uid, gid := os.Getuid(), os.Getgid()
	n := func(p string, typ byte, mode uint32, data string, t time.Time) layertest.Node {
		return layertest.Node{Path: p, Type: typ, Mode: mode, UID: uid, GID: gid, Data: data, ModTime: t}
	}
	nodes := []layertest.Node{
		n("app", tar.TypeDir, 0o755, "", mtime),
		n("app/big.bin", tar.TypeReg, 0o644, string(big), mtime),
		n("app/config", tar.TypeReg, 0o600, "key=value\n", old),
		n("app/empty", tar.TypeDir, 0o700, "", mtime),
		n("app/fifo", tar.TypeFifo, 0o644, "", mtime),
		n("app/run.sh", tar.TypeReg, 0o755, "#!/bin/sh\necho hi\n", mtime),
		{Path: "app/run-link", Type: tar.TypeLink, Target: "app/run.sh"},
		n("app/sub", tar.TypeDir, 0o2755, "", old),
		n("app/sub/a", tar.TypeReg, 0o644, "a", mtime),
		n("app/sub/b", tar.TypeReg, 0o644, "b", mtime),
		{Path: "app/sub/c", Type: tar.TypeSymlink, Target: "../config", UID: uid, GID: gid, ModTime: mtime},
		n("app/tagged", tar.TypeReg, 0o644, "x", mtime),
		n("z", tar.TypeDir, 0o755, "", mtime),
		n("z/last", tar.TypeReg, 0o444, "", mtime),
	}
	nodes[len(nodes)-3].Xattrs = map[string]string{"user.tag": "v1", "user.a": "first"}
	return nodes
}

// buildReordered creates nodes directories first, then everything else in
// reverse order, so inode numbers and directory order differ from Build's.
func buildReordered(t *testing.T, root string, nodes []layertest.Node) {
	t.Helper()
	var dirs, rest []layertest.Node
	for _, n := range nodes {
		if n.Type == tar.TypeDir {
			dirs = append(dirs, n)
		} else {
			rest = append(rest, n)
		}
	}
	slices.Reverse(rest)
	// A hardlink must come after its target.
	slices.SortStableFunc(rest, func(a, b layertest.Node) int {
		return boolInt(a.Type == tar.TypeLink) - boolInt(b.Type == tar.TypeLink)
	})
	layertest.Build(t, root, append(dirs, rest...)...)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// setAtimes gives every file under root a distinct atime.
func setAtimes(t *testing.T, root string) {
	t.Helper()
	i := 0
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		i++
		ts := []unix.Timespec{unix.NsecToTimespec(time.Date(2041, 1, 1, 0, 0, i, 0, time.UTC).UnixNano()), st.Mtim}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDiffReproducible: the same tree diffed twice, and a copy made in
// another order with other (newer than epoch) mtimes, atimes and inodes,
// give the same diffID and digest, whatever GOMAXPROCS. Not parallel: it
// changes GOMAXPROCS.
func TestDiffReproducible(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	layertest.Build(t, a, reproTree(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC))...)
	buildReordered(t, b, reproTree(time.Now()))
	setAtimes(t, b)
	checkSameDiffs(t, a, a, b)
}

// TestDiffReproducibleAcrossFilesystems adds a copy on tmpfs, whose
// directory order (creation order) differs from ext4's (hash order): this
// is what proves the walk sorts.
func TestDiffReproducibleAcrossFilesystems(t *testing.T) {
	testenv.RequirePrivileged(t)
	a, b := t.TempDir(), t.TempDir()
	if err := unix.Mount("tmpfs", b, "tmpfs", 0, "mode=0755"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { layertest.Unmount(t, b) })
	layertest.Build(t, a, reproTree(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC))...)
	buildReordered(t, b, reproTree(time.Now()))
	setAtimes(t, b)
	checkSameDiffs(t, a, b)
}

// checkSameDiffs diffs every dir with each compression at GOMAXPROCS 1
// and 2 and expects one descriptor per compression.
func checkSameDiffs(t *testing.T, dirs ...string) {
	t.Helper()
	for _, c := range []layer.Compression{layer.Gzip, layer.Zstd, layer.Uncompressed} {
		var descs []string
		for _, procs := range []int{1, 2} {
			prev := runtime.GOMAXPROCS(procs)
			for _, dir := range dirs {
				d, _ := diffBytes(t, dir, layer.DiffOptions{Compression: c})
				descs = append(descs, fmt.Sprintf("%+v", d))
			}
			runtime.GOMAXPROCS(prev)
		}
		for i, d := range descs[1:] {
			if d != descs[0] {
				t.Errorf("%s: Diff run %d = %s, want %s (runs: %d dirs at GOMAXPROCS 1, then 2)", c, i+1, d, descs[0], len(dirs))
			}
		}
	}
}

// TestDiffEpoch: SOURCE_DATE_EPOCH, passed as Epoch, moves the clamp.
func TestDiffEpoch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	uid, gid := os.Getuid(), os.Getgid()
	layertest.Build(t, dir,
		layertest.Node{Path: "new", Type: tar.TypeReg, Mode: 0o644, UID: uid, GID: gid, ModTime: newer},
		layertest.Node{Path: "old", Type: tar.TypeReg, Mode: 0o644, UID: uid, GID: gid, ModTime: old.Add(1500 * time.Millisecond)})
	sde := time.Unix(1700000000, 999)
	_, b := diffBytes(t, dir, layer.DiffOptions{Compression: layer.Uncompressed, Epoch: sde})
	got := layertest.List(t, b)
	if len(got) != 2 || !got[0].ModTime.Equal(time.Unix(1700000000, 0)) || !got[1].ModTime.Equal(old.Add(time.Second)) {
		t.Errorf("Diff(Epoch %v) mtimes = %v, %v, want %v, %v", sde, got[0].ModTime, got[1].ModTime, time.Unix(1700000000, 0), old.Add(time.Second))
	}
}
