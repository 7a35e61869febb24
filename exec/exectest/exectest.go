// Package exectest builds root filesystems and sandbox specs for tests of
// minibuild/exec and its users. Only tests import it.
//
// Fixtures are code: a root is a statically linked busybox (Debian's
// busybox-static, /bin/busybox) with one symlink per applet in /bin, plus
// whatever files a test declares. Nothing is downloaded.
package exectest

import (
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"minibuild/exec"
)

// Busybox is the busybox binary the fixtures copy.
const Busybox = "/bin/busybox"

// Passwd and Group are the user databases of [Root] fixtures: root is a
// member of video; app (1000:1000) of audio and video.
const (
	Passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
	Group  = "root:x:0:\ntty:x:5:\naudio:x:29:app\nvideo:x:44:app,root\napp:x:1000:\n"
)

// BusyboxDir returns a new directory holding bin/busybox and one symlink
// per applet in bin/, and nothing else (no /etc, /proc, /dev, /sys). It
// skips t when busybox is not installed and fails it under
// MINIBUILD_PRIVILEGED=1.
func BusyboxDir(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(Busybox); err != nil {
		// internal/testenv's rule; exectest cannot import it (it is not a test).
		if os.Getenv("MINIBUILD_PRIVILEGED") == "1" {
			t.Fatalf("test needs %s (busybox-static): %v", Busybox, err)
		}
		t.Skipf("test needs %s (busybox-static): %v", Busybox, err)
	}
	dir := t.TempDir()
	// The root directory's mode becomes "/" in a sandbox: t.TempDir's 0700
	// would lock every non-root user out.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, Busybox, filepath.Join(bin, "busybox"), 0o755)
	out, err := osexec.Command(Busybox, "--list").Output()
	if err != nil {
		t.Fatalf("%s --list: %v", Busybox, err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(bin, applet)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Root returns a new busybox root ([BusyboxDir]) with /etc/passwd and
// /etc/group ([Passwd], [Group]) and /home/app owned by app.
func Root(t testing.TB) string {
	t.Helper()
	dir := BusyboxDir(t)
	WriteFiles(t, dir, map[string]string{"etc/passwd": Passwd, "etc/group": Group, "home/app/": ""})
	if err := os.Chown(filepath.Join(dir, "home/app"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	return dir
}

// WriteFiles creates files below dir: a key ending in "/" is a directory,
// a value starting with "->" makes a symlink to the rest, anything else a
// regular file (mode 0644) with that content. Parents are created.
func WriteFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		content := files[name]
		var err error
		switch {
		case strings.HasSuffix(name, "/"):
			err = os.MkdirAll(p, 0o755)
		case strings.HasPrefix(content, "->"):
			err = os.Symlink(strings.TrimPrefix(content, "->"), p)
		default:
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// NewRoot returns a RootSpec over lowers (topmost first) with a fresh,
// empty upper and work directory.
func NewRoot(t testing.TB, lowers ...string) exec.RootSpec {
	t.Helper()
	dir := t.TempDir()
	return exec.RootSpec{Lower: lowers, Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work")}
}

// Tree lists every path below dir, sorted, relative to it, directories
// with a trailing "/", symlinks as "name -> target". It returns nil for an
// empty or missing directory.
func Tree(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if os.IsNotExist(err) && p == dir {
			return filepath.SkipDir
		}
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.IsDir():
			rel += "/"
		case d.Type()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			rel += " -> " + target
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	return out
}

func copyFile(t testing.TB, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
