// Package cachetest builds file trees for the cache package's tests and
// benchmarks. Only tests import it.
package cachetest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// Entry is one entry of a declarative tree: a regular file with Content
// (the default), a directory (Dir), or a symlink (Link). Mode 0 means
// 0644 for files and 0755 for directories.
type Entry struct {
	Content string
	Dir     bool
	Link    string
	Mode    os.FileMode
}

// WriteTree creates the entries under root, parents first; parent
// directories not listed are created 0755.
func WriteTree(tb testing.TB, root string, tree map[string]Entry) {
	tb.Helper()
	for name, e := range tree {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		var err error
		switch {
		case e.Dir:
			err = os.MkdirAll(p, 0o755)
			if err == nil && e.Mode != 0 {
				err = os.Chmod(p, e.Mode)
			}
		case e.Link != "":
			err = os.Symlink(e.Link, p)
		default:
			mode := e.Mode
			if mode == 0 {
				mode = 0o644
			}
			err = os.WriteFile(p, []byte(e.Content), mode)
			if err == nil {
				err = os.Chmod(p, mode) // not filtered by umask
			}
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// ManyFilesOptions shapes [ManyFiles].
type ManyFilesOptions struct {
	Dirs, SubDirs, FilesPerDir int   // zero: 20, 10, 100 (20k files)
	MinSize, MaxSize           int   // zero: 64, 8192
	Large                      int   // number of large files under large/
	LargeSize                  int64 // zero: 8 MiB
}

// ManyFiles generates the shape of bench/corpus/02-many-files under root:
// small/pAA/qB/fNNN.txt with pseudo-random content (seeded, so the same
// bytes every time) and Large files large/blobK.bin. It returns the
// number of files written.
func ManyFiles(tb testing.TB, root string, o ManyFilesOptions) int {
	tb.Helper()
	o.Dirs, o.SubDirs, o.FilesPerDir = or(o.Dirs, 20), or(o.SubDirs, 10), or(o.FilesPerDir, 100)
	o.MinSize, o.MaxSize = or(o.MinSize, 64), or(o.MaxSize, 8192)
	if o.LargeSize == 0 {
		o.LargeSize = 8 << 20
	}
	r := rand.New(rand.NewPCG(20240601, 1))
	buf := make([]byte, max(o.MaxSize, 1<<20))
	n := 0
	for a := range o.Dirs {
		for b := range o.SubDirs {
			dir := filepath.Join(root, "small", fmt.Sprintf("p%02d", a), fmt.Sprintf("q%d", b))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				tb.Fatal(err)
			}
			for i := range o.FilesPerDir {
				size := o.MinSize + r.IntN(o.MaxSize-o.MinSize+1)
				fill(r, buf[:size])
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d.txt", i)), buf[:size], 0o644); err != nil {
					tb.Fatal(err)
				}
				n++
			}
		}
	}
	if o.Large > 0 {
		if err := os.MkdirAll(filepath.Join(root, "large"), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	for k := range o.Large {
		f, err := os.Create(filepath.Join(root, "large", fmt.Sprintf("blob%d.bin", k)))
		if err != nil {
			tb.Fatal(err)
		}
		for left := o.LargeSize; left > 0; {
			chunk := buf[:min(int64(len(buf)), left)]
			fill(r, chunk)
			if _, err := f.Write(chunk); err != nil {
				tb.Fatal(err)
			}
			left -= int64(len(chunk))
		}
		if err := f.Close(); err != nil {
			tb.Fatal(err)
		}
		n++
	}
	return n
}

func fill(r *rand.Rand, b []byte) {
	for i := 0; i < len(b); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
}

func or(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
