package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"minibuild/internal/testenv"
)

// repoPath is a path from the module root (tests run in integration/).
func repoPath(t *testing.T, elem ...string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(append([]string{".."}, elem...)...))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// RunIn runs minibuild args with dir as its working directory.
func (e *Env) RunIn(dir string, args ...string) Result {
	e.t.Helper()
	cmd := e.Command(e.t.Context(), args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := Result{Args: args, Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: cmd.ProcessState.ExitCode()}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		e.t.Fatalf("run minibuild %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// MustRunIn is RunIn that fails the test unless minibuild exits 0.
func (e *Env) MustRunIn(dir string, args ...string) string {
	e.t.Helper()
	r := e.RunIn(dir, args...)
	if r.ExitCode != 0 {
		e.t.Fatalf("%v", r)
	}
	return r.Stdout
}

// busyboxArchive makes the "busybox" base image the way `make demo` does
// (scripts/busybox-base.sh, with minibuild itself, from the host's
// busybox-static) in a store of its own, and returns it as an OCI archive
// that [newBuildEnv] imports into each fresh store.
func busyboxArchive(t *testing.T) string {
	t.Helper()
	testenv.RequirePrivileged(t)
	testenv.RequireTool(t, "busybox")
	e := NewEnv(t)
	archive := e.Path("busybox.tar")
	cmd := exec.CommandContext(t.Context(), "bash", repoPath(t, "scripts", "busybox-base.sh"),
		"--root", e.Root, "--progress=plain", "-o", "type=oci,dest="+archive)
	cmd.Env = append(os.Environ(), "MINIBUILD="+e.Bin, "MINIBUILD_ROOT=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/busybox-base.sh: %v\n%s", err, out)
	}
	return archive
}

// newBuildEnv is a fresh store holding the busybox base of archive.
func newBuildEnv(t *testing.T, archive string) *Env {
	t.Helper()
	e := NewEnv(t)
	e.MustRun("import", archive, "-t", "busybox")
	return e
}

// copyExample copies examples/name to dst the way a checkout would make
// it: directories 0755, files 0644 or 0755 (git keeps only the executable
// bit), every mtime set to mtime. The expected/ directory is left out.
func copyExample(t *testing.T, name, dst string, mtime time.Time) {
	t.Helper()
	src := repoPath(t, "examples", name)
	var dirs []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "expected" {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			dirs = append(dirs, target)
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err == nil {
				err = os.Symlink(link, target)
			}
			if err == nil {
				err = lutimes(target, mtime)
			}
			return err
		case d.Type().IsRegular():
			mode := os.FileMode(0o644)
			if info.Mode()&0o111 != 0 {
				mode = 0o755
			}
			b, err := os.ReadFile(p)
			if err == nil {
				err = os.WriteFile(target, b, mode)
			}
			if err == nil {
				err = os.Chmod(target, mode) // not subject to umask
			}
			if err == nil {
				err = os.Chtimes(target, mtime, mtime)
			}
			return err
		}
		return fmt.Errorf("%s: unexpected file type %v", p, d.Type())
	})
	if err != nil {
		t.Fatalf("copy example %s: %v", name, err)
	}
	for _, d := range slices.Backward(dirs) { // children first: writing them changed the parents' mtimes
		if err := os.Chtimes(d, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

// lutimes sets a symlink's own times (utimensat with
// AT_SYMLINK_NOFOLLOW, which package syscall does not wrap).
func lutimes(path string, t time.Time) error {
	const atFDCWD, atSymlinkNofollow = -100, 0x100
	ts := [2]syscall.Timespec{syscall.NsecToTimespec(t.UnixNano()), syscall.NsecToTimespec(t.UnixNano())}
	p, err := syscall.BytePtrFromString(path)
	if err != nil {
		return err
	}
	fd := atFDCWD
	_, _, errno := syscall.Syscall6(syscall.SYS_UTIMENSAT, uintptr(fd), uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(&ts[0])), atSymlinkNofollow, 0, 0)
	if errno != 0 {
		return &os.PathError{Op: "utimensat", Path: path, Err: errno}
	}
	return nil
}

// exampleFlags reads examples/name/flags: extra build arguments, one per
// line (paths in them are relative to the example directory).
func exampleFlags(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "flags"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var flags []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			flags = append(flags, l)
		}
	}
	return flags
}

// fileEntry is one path of a root filesystem as a golden listing shows it.
type fileEntry struct {
	Type   string // dir, file, symlink, fifo, char, block, socket
	Mode   string // permission and setuid/setgid/sticky bits, octal
	Owner  string // uid:gid
	Size   string // files only, else "-"
	Digest string // files only: sha256 of the content
	Link   string // symlinks only: the target
}

func (f fileEntry) String() string {
	return strings.Join([]string{f.Type, f.Mode, f.Owner, f.Size, f.Digest, f.Link}, " ")
}

// listTree lists every path under root (root itself excluded) by its
// absolute path in the image.
func listTree(t *testing.T, root string) map[string]fileEntry {
	t.Helper()
	out := map[string]fileEntry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		e := fileEntry{Mode: fmt.Sprintf("%04o", st.Mode&0o7777), Owner: fmt.Sprintf("%d:%d", st.Uid, st.Gid), Size: "-", Digest: "-", Link: "-"}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			e.Type = "dir"
		case syscall.S_IFLNK:
			e.Type = "symlink"
			if e.Link, err = os.Readlink(p); err != nil {
				return err
			}
		case syscall.S_IFREG:
			e.Type, e.Size = "file", strconv.FormatInt(st.Size, 10)
			if e.Digest, err = fileDigest(p); err != nil {
				return err
			}
		case syscall.S_IFIFO:
			e.Type = "fifo"
		case syscall.S_IFCHR:
			e.Type = fmt.Sprintf("char(%d)", st.Rdev)
		case syscall.S_IFBLK:
			e.Type = fmt.Sprintf("block(%d)", st.Rdev)
		default:
			e.Type = "socket"
		}
		out["/"+filepath.ToSlash(rel)] = e
		return nil
	})
	if err != nil {
		t.Fatalf("list %s: %v", root, err)
	}
	return out
}

func fileDigest(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// formatListing is the golden listing of img: one sorted line per path
// that differs from base ("path type mode uid:gid size sha256 link", "-"
// where a field does not apply), and "path deleted" for base paths img
// lacks. Paths with spaces or unprintable bytes are Go-quoted.
func formatListing(img, base map[string]fileEntry) string {
	paths := map[string]bool{}
	for p := range img {
		paths[p] = true
	}
	for p := range base {
		paths[p] = true
	}
	var b strings.Builder
	for _, p := range slices.Sorted(func(yield func(string) bool) {
		for p := range paths {
			if !yield(p) {
				return
			}
		}
	}) {
		shown := p
		if q := strconv.Quote(p); strings.ContainsAny(p, " \t\"\\") || q[1:len(q)-1] != p {
			shown = q
		}
		e, inImg := img[p]
		old, inBase := base[p]
		switch {
		case !inImg:
			fmt.Fprintf(&b, "%s deleted\n", shown)
		case !inBase || old != e:
			fmt.Fprintf(&b, "%s %s\n", shown, e)
		}
	}
	return b.String()
}

// inspected is what the tests read of `minibuild inspect`.
type inspected struct {
	Digest   string
	Manifest struct {
		Layers []struct {
			Digest string `json:"digest"`
		} `json:"layers"`
		Annotations map[string]string `json:"annotations"`
	}
	Config imageConfig
}

// imageConfig is the part of an image config the golden files hold.
type imageConfig struct {
	Config struct {
		Env          []string            `json:",omitempty"`
		Entrypoint   []string            `json:",omitempty"`
		Cmd          []string            `json:",omitempty"`
		WorkingDir   string              `json:",omitempty"`
		User         string              `json:",omitempty"`
		Labels       map[string]string   `json:",omitempty"`
		ExposedPorts map[string]struct{} `json:",omitempty"`
		Volumes      map[string]struct{} `json:",omitempty"`
		StopSignal   string              `json:",omitempty"`
		Healthcheck  *struct {
			Test        []string      `json:",omitempty"`
			Interval    time.Duration `json:",omitempty"`
			Timeout     time.Duration `json:",omitempty"`
			StartPeriod time.Duration `json:",omitempty"`
			Retries     int           `json:",omitempty"`
		} `json:",omitempty"`
		OnBuild []string `json:",omitempty"`
		Shell   []string `json:",omitempty"`
	} `json:"config"`
	History []struct {
		CreatedBy  string `json:"created_by,omitempty"`
		EmptyLayer bool   `json:"empty_layer,omitempty"`
	} `json:"history"`
}

// inspect reads ref's manifest and config from the store.
func (e *Env) inspect(ref string) inspected {
	e.t.Helper()
	var out []struct {
		Digest   string
		Manifest json.RawMessage
		Config   json.RawMessage
	}
	if err := json.Unmarshal([]byte(e.MustRun("inspect", ref)), &out); err != nil || len(out) != 1 {
		e.t.Fatalf("inspect %s: %v (%d images)", ref, err, len(out))
	}
	in := inspected{Digest: out[0].Digest}
	if err := json.Unmarshal(out[0].Manifest, &in.Manifest); err != nil {
		e.t.Fatalf("inspect %s: manifest: %v", ref, err)
	}
	if err := json.Unmarshal(out[0].Config, &in.Config); err != nil {
		e.t.Fatalf("inspect %s: config: %v", ref, err)
	}
	return in
}

// hasPrefixLayers reports whether img's layers start with all of base's.
func hasPrefixLayers(img, base inspected) bool {
	if len(base.Manifest.Layers) == 0 || len(img.Manifest.Layers) < len(base.Manifest.Layers) {
		return false
	}
	for i, l := range base.Manifest.Layers {
		if img.Manifest.Layers[i].Digest != l.Digest {
			return false
		}
	}
	return true
}
