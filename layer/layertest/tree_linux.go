//go:build linux

package layertest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TypeSocket marks a socket [Node] (tar has no type for it).
const TypeSocket byte = 's'

// Node is one file of a declarative tree, and one row of a [Snapshot].
type Node struct {
	Path string // slash-separated, relative to the tree's root
	Type byte   // tar.TypeDir, TypeReg, TypeSymlink, TypeLink, TypeChar, TypeBlock, TypeFifo or TypeSocket
	Mode uint32 // permission and special bits
	UID  int
	GID  int
	// Data is a regular file's content. Snapshot records files larger
	// than 4 KiB as "sha256:<hex>".
	Data string
	// Target is a symlink's target or, for TypeLink, the path of the file
	// it links to (in a Snapshot: the first path of the inode in walk
	// order).
	Target       string
	Major, Minor uint32
	ModTime      time.Time         // zero: left as created (Build)
	Xattrs       map[string]string // nil when none
}

// Build creates nodes under root, in order (list parents first). Owners,
// modes and xattrs are set as given; mtimes are set at the end, deepest
// path first, so creating children does not disturb them.
func Build(t testing.TB, root string, nodes ...Node) {
	t.Helper()
	for _, n := range nodes {
		p := filepath.Join(root, filepath.FromSlash(n.Path))
		if err := create(p, root, n); err != nil {
			t.Fatalf("layertest.Build %s: %v", n.Path, err)
		}
		if n.Type == tar.TypeLink {
			continue // shares the target's metadata
		}
		if err := os.Lchown(p, n.UID, n.GID); err != nil {
			t.Fatalf("layertest.Build %s: %v", n.Path, err)
		}
		if n.Type != tar.TypeSymlink {
			if err := unix.Fchmodat(unix.AT_FDCWD, p, n.Mode, 0); err != nil {
				t.Fatalf("layertest.Build %s: chmod: %v", n.Path, err)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(n.Xattrs)) {
			if err := unix.Lsetxattr(p, k, []byte(n.Xattrs[k]), 0); err != nil {
				t.Fatalf("layertest.Build %s: set xattr %s: %v", n.Path, k, err)
			}
		}
	}
	timed := slices.Clone(nodes)
	slices.SortStableFunc(timed, func(a, b Node) int { return strings.Count(b.Path, "/") - strings.Count(a.Path, "/") })
	for _, n := range timed {
		if n.ModTime.IsZero() || n.Type == tar.TypeLink {
			continue
		}
		if err := SetTimes(filepath.Join(root, filepath.FromSlash(n.Path)), n.ModTime); err != nil {
			t.Fatalf("layertest.Build %s: %v", n.Path, err)
		}
	}
}

func create(p, root string, n Node) error {
	switch n.Type {
	case tar.TypeDir:
		return os.Mkdir(p, 0o700)
	case tar.TypeReg, 0:
		return os.WriteFile(p, []byte(n.Data), 0o600)
	case tar.TypeSymlink:
		return os.Symlink(n.Target, p)
	case tar.TypeLink:
		return os.Link(filepath.Join(root, filepath.FromSlash(n.Target)), p)
	case tar.TypeChar:
		return unix.Mknod(p, unix.S_IFCHR|0o600, int(unix.Mkdev(n.Major, n.Minor)))
	case tar.TypeBlock:
		return unix.Mknod(p, unix.S_IFBLK|0o600, int(unix.Mkdev(n.Major, n.Minor)))
	case tar.TypeFifo:
		return unix.Mkfifo(p, 0o600)
	case TypeSocket:
		return unix.Mknod(p, unix.S_IFSOCK|0o600, 0)
	}
	return fmt.Errorf("unknown node type %q", n.Type)
}

// SetTimes sets atime and mtime of p to t without following a symlink.
func SetTimes(p string, t time.Time) error {
	ts, err := unix.TimeToTimespec(t)
	if err != nil {
		return err
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

// Snapshot describes every file under root (not root itself) in walk
// order: type, mode, owner, content, link target, device numbers, mtime
// and all xattrs. Later links to one inode appear as TypeLink nodes whose
// Target is the first path (with their own mtime and no xattrs). The
// contents of the directories named in skip (relative paths) are left out;
// the directories themselves are listed.
func Snapshot(t testing.TB, root string, skip ...string) []Node {
	t.Helper()
	var out []Node
	first := make(map[[2]uint64]string)
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		n, err := describe(p, rel, first)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		out = append(out, n)
		if de.IsDir() && slices.Contains(skip, rel) {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatalf("layertest.Snapshot %s: %v", root, err)
	}
	return out
}

func describe(p, rel string, first map[[2]uint64]string) (Node, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return Node{}, err
	}
	n := Node{
		Path: rel, Mode: st.Mode & 0o7777, UID: int(st.Uid), GID: int(st.Gid),
		ModTime: time.Unix(int64(st.Mtim.Sec), int64(st.Mtim.Nsec)).UTC(),
	}
	typ := st.Mode & unix.S_IFMT
	if typ != unix.S_IFDIR && st.Nlink > 1 {
		id := [2]uint64{uint64(st.Dev), uint64(st.Ino)}
		if f, ok := first[id]; ok {
			n.Type, n.Target, n.Mode, n.UID, n.GID = tar.TypeLink, f, 0, 0, 0
			return n, nil
		}
		first[id] = rel
	}
	switch typ {
	case unix.S_IFDIR:
		n.Type = tar.TypeDir
	case unix.S_IFREG:
		n.Type = tar.TypeReg
		b, err := os.ReadFile(p)
		if err != nil {
			return Node{}, err
		}
		n.Data = string(b)
		if len(b) > 4096 {
			n.Data = fmt.Sprintf("sha256:%x", sha256.Sum256(b))
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(p)
		if err != nil {
			return Node{}, err
		}
		n.Type, n.Target = tar.TypeSymlink, target
	case unix.S_IFCHR, unix.S_IFBLK:
		n.Type = tar.TypeChar
		if typ == unix.S_IFBLK {
			n.Type = tar.TypeBlock
		}
		n.Major, n.Minor = unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev))
	case unix.S_IFIFO:
		n.Type = tar.TypeFifo
	case unix.S_IFSOCK:
		n.Type = TypeSocket
	}
	x, err := Xattrs(p)
	n.Xattrs = x
	return n, err
}

// Xattrs returns all xattrs of p (not following a symlink), nil if none.
func Xattrs(p string) (map[string]string, error) {
	buf := make([]byte, 64<<10)
	sz, err := unix.Llistxattr(p, buf)
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list xattrs: %w", err)
	}
	var out map[string]string
	for _, k := range bytes.Split(buf[:sz], []byte{0}) {
		if len(k) == 0 {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, string(k), v)
		if err != nil {
			return nil, fmt.Errorf("get xattr %s: %w", k, err)
		}
		if out == nil {
			out = make(map[string]string)
		}
		out[string(k)] = string(v[:m])
	}
	return out, nil
}

// MountOverlay mounts an overlay at merged and unmounts it when the test
// ends. lowers are listed top first. With upper empty the mount is
// read-only (lowers only, at least two). The options are the ones
// minibuild builds with: a complete, portable upperdir.
func MountOverlay(t testing.TB, merged string, lowers []string, upper, work string) {
	t.Helper()
	opts := "lowerdir=" + strings.Join(lowers, ":")
	if upper != "" {
		opts += ",upperdir=" + upper + ",workdir=" + work + ",volatile"
	}
	opts += ",redirect_dir=off,metacopy=off,index=off"
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Fatalf("mount overlay on %s (%s): %v", merged, opts, err)
	}
	t.Cleanup(func() { Unmount(t, merged) })
}

// Unmount unmounts target if it is still mounted.
func Unmount(t testing.TB, target string) {
	t.Helper()
	if err := unix.Unmount(target, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		t.Errorf("unmount %s: %v", target, err)
	}
}
