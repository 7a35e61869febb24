//go:build linux

package exec_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"minibuild/exec"
	"minibuild/exec/exectest"
	"minibuild/internal/testenv"

	"golang.org/x/sys/unix"
)

// TestRunStubs checks that the mountpoints a sandbox needs never reach the
// upper directory, whatever the image has at those paths, while what the
// step really changed does.
func TestRunStubs(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	bare := exectest.BusyboxDir(t) // no /etc, /proc, /dev, /sys
	withEtc := exectest.Root(t)    // /etc without hosts, resolv.conf, hostname
	links := exectest.BusyboxDir(t)
	exectest.WriteFiles(t, links, map[string]string{
		"etc/resolv.conf": "->/run/systemd/resolve/stub-resolv.conf",
		"etc/hostname":    "->../nowhere",
		"proc":            "->/nonexistent",
		"sys/":            "",
		"dev/console":     "",
	})
	etcLink := exectest.BusyboxDir(t)
	exectest.WriteFiles(t, etcLink, map[string]string{"etc": "->usr/etc", "usr/etc/passwd": exectest.Passwd})
	for _, tc := range []struct {
		name   string
		lower  string
		script string
		want   []string
	}{
		{"bare image", bare, "cat /etc/hosts /etc/resolv.conf >/dev/null && ls /proc/1 /sys/kernel >/dev/null", nil},
		{"bare image, step writes /etc", bare, "echo hi > /etc/foo", []string{"etc/", "etc/foo"}},
		{"bare image, step writes in /dev", bare, "mkdir -p /dev/x", nil},
		{"image with /etc", withEtc, "true", nil},
		{"image with /etc, step writes /etc", withEtc, "echo hi > /etc/foo", []string{"etc/", "etc/foo"}},
		{"image with /etc, step chmods /etc", withEtc, "chmod 700 /etc", []string{"etc/"}},
		{"image with /etc, step removes a file", withEtc, "rm /etc/group", []string{"etc/", "etc/group"}},
		{"symlinks where mounts go", links, "test -f /etc/resolv.conf && test -d /proc/1 && cat /etc/hostname", nil},
		{"/etc is a symlink", etcLink, "cat /etc/passwd >/dev/null", nil},
		{"missing cwd is created", bare, "true", []string{"work/", "work/dir/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := exec.Spec{Root: exectest.NewRoot(t, tc.lower)}
			if strings.HasPrefix(tc.name, "missing cwd") {
				s.Cwd = "/work/dir"
			}
			mustSh(t, s, tc.script)
			if got := exectest.Tree(t, s.Root.Upper); !slices.Equal(got, tc.want) {
				t.Errorf("upper after %q = %q, want %q", tc.script, got, tc.want)
			}
		})
	}
}

// TestRunStubsLowerStack checks stubs below a layer that does not have
// /etc (a deeper one does) and below one that deleted it (a whiteout).
func TestRunStubsLowerStack(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	base := exectest.Root(t)
	deleted := t.TempDir()
	if err := unix.Mknod(filepath.Join(deleted, "etc"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	// A whiteout hides /etc/hosts and an opaque /etc hides everything
	// below it, the stub layer's files too: the init falls back to stubs
	// in the upper directory.
	hostsDeleted := t.TempDir()
	exectest.WriteFiles(t, hostsDeleted, map[string]string{"etc/": ""})
	if err := unix.Mknod(filepath.Join(hostsDeleted, "etc/hosts"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	opaque := t.TempDir()
	exectest.WriteFiles(t, opaque, map[string]string{"etc/motd": "hi"})
	if err := unix.Setxattr(filepath.Join(opaque, "etc"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, top, want string
	}{
		{"etc below", t.TempDir(), "group hostname hosts passwd resolv.conf"},
		{"etc deleted", deleted, "hostname hosts resolv.conf"},
		{"hosts deleted", hostsDeleted, "group hostname hosts passwd resolv.conf"},
		{"etc opaque", opaque, "hostname hosts motd resolv.conf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := exec.Spec{Root: exectest.NewRoot(t, tc.top, base)}
			if got := strings.Join(strings.Fields(mustSh(t, s, "ls /etc")), " "); got != tc.want {
				t.Errorf("ls /etc = %q, want %q", got, tc.want)
			}
			if got := exectest.Tree(t, s.Root.Upper); got != nil {
				t.Errorf("upper = %q, want empty", got)
			}
		})
	}
}

// TestRunStatDevices checks that the stub layer, on a tmpfs, leaves
// st_dev as it is with the image's layers alone: the overlay's for every
// object (on the filesystems where stubLayerFits).
func TestRunStatDevices(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	lower := exectest.Root(t)
	s := exec.Spec{Root: exectest.NewRoot(t, lower)}
	if err := os.MkdirAll(s.Root.Upper, 0o755); err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(s.Root.Upper, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.EXT4_SUPER_MAGIC && st.Type != unix.TMPFS_MAGIC {
		t.Skipf("temp dir on filesystem type %#x, not ext4 or tmpfs", st.Type)
	}
	out := mustSh(t, s, "echo new > /new; stat -c %d / /bin /bin/busybox /etc /etc/passwd /new")
	devs := strings.Fields(out)
	if len(devs) != 6 || len(slices.Compact(slices.Clone(devs))) != 1 {
		t.Errorf("st_dev of /, /bin, /bin/busybox, /etc, /etc/passwd, /new = %q, want all the same", devs)
	}
}

// TestRunUpperRootMode checks that "/" has the image's mode and owner,
// not the upper directory's.
func TestRunUpperRootMode(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	lower := exectest.Root(t)
	if err := os.Chmod(lower, 0o751); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(lower, 0, 44); err != nil {
		t.Fatal(err)
	}
	s := exec.Spec{Root: exectest.NewRoot(t, lower)}
	if err := os.MkdirAll(s.Root.Upper, 0o700); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(mustSh(t, s, "stat -c '%a %u:%g' /")); got != "751 0:44" {
		t.Errorf("stat / = %q, want %q", got, "751 0:44")
	}
}

// TestRunDeepImage stacks 150 lowers, more than a mount(2) option string
// can name.
func TestRunDeepImage(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	const n = 150
	dir := t.TempDir()
	lowers := make([]string, 0, n)
	for i := range n - 1 {
		l := filepath.Join(dir, "layer-with-a-long-name-"+strconv.Itoa(i))
		exectest.WriteFiles(t, l, map[string]string{"layers/" + strconv.Itoa(i): "", "top": strconv.Itoa(i)})
		lowers = append(lowers, l)
	}
	lowers = append(lowers, exectest.Root(t))
	s := exec.Spec{Root: exectest.NewRoot(t, lowers...)}
	if got := s.Root.Mount().String(); len(got) < 4096 {
		t.Fatalf("mount options are %d bytes, want more than a page to test lowerdir+", len(got))
	}
	out := mustSh(t, s, "ls /layers | wc -l; cat /top")
	if got, want := strings.Fields(out), []string{strconv.Itoa(n - 1), "0"}; !slices.Equal(got, want) {
		t.Errorf("layers seen, top file = %q, want %q", got, want)
	}
}
