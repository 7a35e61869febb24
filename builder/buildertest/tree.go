// Package buildertest holds fixtures for the builder's tests: declarative
// directory trees to create and to read back. Only tests import it.
package buildertest

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Type is the kind of a tree entry.
type Type string

// Entry types.
const (
	TypeFile     Type = "file"
	TypeDir      Type = "dir"
	TypeSymlink  Type = "symlink"
	TypeHardlink Type = "hardlink" // Target is the first path of the inode
	TypeFifo     Type = "fifo"
)

// Entry is one filesystem entry of a declarative tree.
type Entry struct {
	Path   string // slash-separated, relative to the tree
	Type   Type
	Mode   uint32 // permission bits, with 04000/02000/01000; ignored for symlinks
	UID    int
	GID    int
	Data   string // file content
	Target string // symlink target, or hardlink's first path
}

// File is a regular file owned by 0:0.
func File(path, data string, mode uint32) Entry {
	return Entry{Path: path, Type: TypeFile, Mode: mode, Data: data}
}

// Dir is a directory owned by 0:0.
func Dir(path string, mode uint32) Entry {
	return Entry{Path: path, Type: TypeDir, Mode: mode}
}

// Symlink is a symbolic link owned by 0:0.
func Symlink(path, target string) Entry {
	return Entry{Path: path, Type: TypeSymlink, Mode: 0o777, Target: target}
}

// Hardlink is a second name for the file at target (created earlier).
func Hardlink(path, target string) Entry {
	return Entry{Path: path, Type: TypeHardlink, Target: target}
}

// Fifo is a named pipe owned by 0:0.
func Fifo(path string, mode uint32) Entry {
	return Entry{Path: path, Type: TypeFifo, Mode: mode}
}

// Owned returns e with owner uid:gid.
func (e Entry) Owned(uid, gid int) Entry {
	e.UID, e.GID = uid, gid
	return e
}

// String renders an entry on one line, for readable diffs.
func (e Entry) String() string {
	s := fmt.Sprintf("%s %s %04o %d:%d", e.Path, e.Type, e.Mode, e.UID, e.GID)
	switch e.Type {
	case TypeFile:
		s += fmt.Sprintf(" %q", e.Data)
	case TypeSymlink, TypeHardlink:
		s += " -> " + e.Target
	}
	return s
}

// Create makes entries under dir, in order; missing parents become 0755
// directories. Owners other than the caller's need root. Every mtime is
// set to a fixed time so trees are reproducible.
func Create(t testing.TB, dir string, entries ...Entry) {
	t.Helper()
	stamp := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, e := range entries {
		p := filepath.Join(dir, filepath.FromSlash(e.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch e.Type {
		case TypeFile:
			err = os.WriteFile(p, []byte(e.Data), 0o600)
		case TypeDir:
			err = os.Mkdir(p, 0o700)
			if os.IsExist(err) {
				err = nil
			}
		case TypeSymlink:
			err = os.Symlink(e.Target, p)
		case TypeHardlink:
			err = os.Link(filepath.Join(dir, filepath.FromSlash(e.Target)), p)
		case TypeFifo:
			err = syscall.Mkfifo(p, 0o600)
		default:
			err = fmt.Errorf("unknown entry type %q", e.Type)
		}
		if err != nil {
			t.Fatalf("create %s: %v", e.Path, err)
		}
		if e.Type == TypeHardlink {
			continue
		}
		if err := os.Lchown(p, e.UID, e.GID); err != nil && (e.UID != 0 || e.GID != 0 || os.Geteuid() == 0) {
			t.Fatalf("chown %s: %v", e.Path, err)
		}
		if e.Type != TypeSymlink {
			if err := os.Chmod(p, modeOf(e.Mode)); err != nil {
				t.Fatalf("chmod %s: %v", e.Path, err)
			}
		}
	}
	// Times last, deepest first, so creating children does not change them.
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path > entries[j].Path })
	for _, e := range entries {
		p := filepath.Join(dir, filepath.FromSlash(e.Path))
		if e.Type != TypeSymlink {
			_ = os.Chtimes(p, stamp, stamp)
		}
	}
}

func modeOf(m uint32) fs.FileMode {
	fm := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		fm |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		fm |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		fm |= fs.ModeSticky
	}
	return fm
}

// Read returns every entry below dir (not dir itself) in lexical order.
// A file sharing its inode with an earlier one reads as TypeHardlink.
func Read(t testing.TB, dir string) []Entry {
	t.Helper()
	var out []Entry
	seen := map[uint64]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		e, err := readEntry(p, filepath.ToSlash(rel), seen)
		if err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatalf("read tree %s: %v", dir, err)
	}
	return out
}

func readEntry(p, rel string, seen map[uint64]string) (Entry, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return Entry{}, err
	}
	st := fi.Sys().(*syscall.Stat_t)
	e := Entry{Path: rel, UID: int(st.Uid), GID: int(st.Gid), Mode: uint32(st.Mode) & 0o7777}
	switch {
	case fi.IsDir():
		e.Type = TypeDir
	case fi.Mode()&fs.ModeSymlink != 0:
		e.Type, e.Mode = TypeSymlink, 0o777
		e.Target, err = os.Readlink(p)
	case fi.Mode()&fs.ModeNamedPipe != 0:
		e.Type = TypeFifo
	case fi.Mode().IsRegular():
		if first, ok := seen[st.Ino]; ok && st.Nlink > 1 {
			return Entry{Path: rel, Type: TypeHardlink, Target: first}, nil
		}
		seen[st.Ino] = rel
		e.Type = TypeFile
		var b []byte
		b, err = os.ReadFile(p)
		e.Data = string(b)
	default:
		err = fmt.Errorf("%s: unsupported file type %v", rel, fi.Mode())
	}
	return e, err
}

// Format renders a tree one entry per line.
func Format(entries []Entry) string {
	lines := make([]string, len(entries))
	for i, e := range entries {
		lines[i] = e.String()
	}
	return strings.Join(lines, "\n")
}
