package exec

import (
	"errors"
	"io/fs"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func TestRootSpecMount(t *testing.T) {
	t.Parallel()
	r := RootSpec{Lower: []string{"/l/top", "/l/base"}, Upper: "/u", Work: "/w"}
	want := Mount{Type: "overlay", Source: "overlay", Target: "/", Options: []string{
		"lowerdir+=/l/top", "lowerdir+=/l/base", "upperdir=/u", "workdir=/w",
		"redirect_dir=off", "metacopy=off", "index=off", "volatile", "nodev",
	}}
	if diff := cmp.Diff(want, r.Mount()); diff != "" {
		t.Errorf("Mount() mismatch (-want +got):\n%s", diff)
	}
	scratch := RootSpec{Upper: "/u", Work: "/w"}
	if diff := cmp.Diff(Mount{Type: "bind", Source: "/u", Target: "/", Options: []string{"bind", "nodev"}}, scratch.Mount()); diff != "" {
		t.Errorf("Mount() without lowers mismatch (-want +got):\n%s", diff)
	}
	if got, want := r.Mount().String(), "overlay on / type overlay (lowerdir+=/l/top,lowerdir+=/l/base,upperdir=/u,"; !strings.HasPrefix(got, want) {
		t.Errorf("String() = %q, want prefix %q", got, want)
	}
}

// TestSpecMountsStubLayer checks where the stub layer goes: below the
// image's layers, on the filesystems where it is invisible (see
// withStubLayer), and nowhere else.
func TestSpecMountsStubLayer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	fits := st.Type == unix.EXT4_SUPER_MAGIC || st.Type == unix.TMPFS_MAGIC
	s := Spec{Root: RootSpec{Lower: []string{"/l/top", "/l/base"}, Upper: dir + "/u", Work: dir + "/w"}}
	got := s.Mounts()[0].Options
	want := slices.Clone(s.Root.Mount().Options)
	if fits {
		want = slices.Insert(want, 2, "lowerdir+="+dir+"/w/stubs")
		want = append(want, "xino=auto")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Mounts()[0].Options mismatch on filesystem %#x (-want +got):\n%s", st.Type, diff)
	}
	if got := stubLayerFits("/proc/self"); got {
		t.Errorf("stubLayerFits(/proc/self) = true, want false (procfs)")
	}
	scratch := Spec{Root: RootSpec{Upper: dir + "/u", Work: dir + "/w"}}
	if diff := cmp.Diff(scratch.Root.Mount(), scratch.Mounts()[0]); diff != "" {
		t.Errorf("Mounts()[0] without lowers mismatch (-want +got):\n%s", diff)
	}
}

func TestSpecMounts(t *testing.T) {
	t.Parallel()
	s := Spec{Root: RootSpec{Lower: []string{"/l"}, Upper: "/u", Work: "/w"}}
	ms := s.Mounts()
	var targets []string
	for _, m := range ms {
		targets = append(targets, m.Target)
		if !strings.HasPrefix(m.Target, "/") {
			t.Errorf("mount %v: target not absolute", m)
		}
	}
	if ms[0].Target != "/" || ms[0].Type != "overlay" {
		t.Errorf("first mount = %v, want the overlay root", ms[0])
	}
	// Every mount comes after the one it lies on.
	for i, m := range ms[1:] {
		if p := parentMount(targets[:i+1], m.Target); p == "" {
			t.Errorf("mount %s comes before its parent mount", m.Target)
		}
	}
	for _, want := range []string{"/proc", "/proc/sys", "/proc/sysrq-trigger", "/proc/kcore", "/dev", "/dev/null", "/dev/pts", "/dev/shm", "/sys", "/etc/resolv.conf", "/etc/hosts", "/etc/hostname"} {
		if !slices.Contains(targets, want) {
			t.Errorf("Mounts() lacks %s", want)
		}
	}
	for _, m := range ms {
		o := parseOptions(m.Options)
		switch m.Target {
		case "/sys", "/proc/sys", "/etc/hosts", "/etc/resolv.conf":
			if o.flags&unix.MS_RDONLY == 0 {
				t.Errorf("%s is not read-only", m.Target)
			}
		case "/dev":
			if o.flags&unix.MS_NODEV == 0 {
				t.Errorf("/dev tmpfs is not nodev")
			}
		}
		if m.Type == "bind" && !strings.HasPrefix(m.Source, "/") {
			t.Errorf("bind %v: source not a host path", m)
		}
	}
}

func TestParseOptions(t *testing.T) {
	t.Parallel()
	o := parseOptions([]string{"bind", "ro", "nosuid", "nodev", "noexec", "mode=755", "size=1k", "nofail"})
	want := uintptr(unix.MS_BIND | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if o.flags != want || !o.nofail || !slices.Equal(o.data, []string{"mode=755", "size=1k"}) {
		t.Errorf("parseOptions = %+v, want flags %#x, nofail, data [mode=755 size=1k]", o, want)
	}
	if o := parseOptions([]string{"rbind"}); o.flags != unix.MS_BIND|unix.MS_REC {
		t.Errorf("parseOptions(rbind) flags = %#x, want MS_BIND|MS_REC", o.flags)
	}
}

func TestClassicOverlayData(t *testing.T) {
	t.Parallel()
	c := parseOverlay(RootSpec{Lower: []string{"/a:b", "/c,d", `/e\f`}, Upper: "/u", Work: "/w"}.Mount().Options)
	got, err := classicOverlayData(c)
	want := `lowerdir=/a\:b:/c\,d:/e\\f,upperdir=/u,workdir=/w,redirect_dir=off,metacopy=off,index=off,volatile`
	if err != nil || got != want {
		t.Errorf("classicOverlayData = %q, %v; want %q", got, err, want)
	}
	if c.flags != unix.MS_NODEV {
		t.Errorf("overlay flags = %#x, want MS_NODEV", c.flags)
	}
	var many []string
	for range 100 {
		many = append(many, "/var/lib/minibuild/snapshots/sha256-0123456789abcdef")
	}
	if _, err := classicOverlayData(parseOverlay(RootSpec{Lower: many, Upper: "/u", Work: "/w"}.Mount().Options)); err == nil {
		t.Errorf("classicOverlayData(100 long lowers) = nil error, want a too-long error")
	}
}

func TestParentMount(t *testing.T) {
	t.Parallel()
	mounted := []string{"/", "/proc", "/dev", "/dev/pts"}
	for p, want := range map[string]string{
		"/etc/hosts": "/", "/proc/sys": "/proc", "/dev/pts/ptmx": "/dev/pts", "/devx": "/", "/dev": "/dev",
	} {
		if got := parentMount(mounted, p); got != want {
			t.Errorf("parentMount(%q) = %q, want %q", p, got, want)
		}
	}
}

func TestCommandEnv(t *testing.T) {
	t.Parallel()
	u := User{Home: "/home/app"}
	if got, want := commandEnv(nil, u), []string{"PATH=" + DefaultPath, "HOME=/home/app"}; !slices.Equal(got, want) {
		t.Errorf("commandEnv(nil) = %q, want %q", got, want)
	}
	env := []string{"HOME=/x", "A=1", "PATH=/bin"}
	if got := commandEnv(env, u); !slices.Equal(got, env) {
		t.Errorf("commandEnv(%q) = %q, want it unchanged", env, got)
	}
}

func TestReadStatus(t *testing.T) {
	t.Parallel()
	stream := `{"Stub":{"Path":"proc"}}
{"Stub":{"Path":"etc","Copied":true,"Mode":493}}
{"Exec":true}
{"Err":{"Text":"exec /bin/sh: no such file or directory","Errno":2}}
{"Stub":{"Path":"torn`
	st := readStatus(strings.NewReader(stream))
	want := []stub{{Path: "proc"}, {Path: "etc", Copied: true, Mode: 0o755}}
	if diff := cmp.Diff(want, st.stubs); diff != "" {
		t.Errorf("stubs mismatch (-want +got):\n%s", diff)
	}
	if st.started || st.err == nil || st.err.Error() != "exec /bin/sh: no such file or directory" || !errors.Is(st.err, fs.ErrNotExist) {
		t.Errorf("status = started %v, err %v; want not started, an ENOENT exec error", st.started, st.err)
	}
	w := toWire(&setupError{text: "x", cause: ErrUnknownUser})
	if !w.UnknownUser || !errors.Is(w.err(), ErrUnknownUser) {
		t.Errorf("toWire(unknown user) = %+v, want it to round-trip ErrUnknownUser", w)
	}
	if w := toWire(syscall.EACCES); !errors.Is(w.err(), fs.ErrPermission) {
		t.Errorf("toWire(EACCES).err() = %v, want fs.ErrPermission", w.err())
	}
}

func TestExitError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		e    ExitError
		want string
	}{
		{ExitError{Code: 2}, "exit code 2"},
		{ExitError{Code: 137, Signal: syscall.SIGKILL}, "killed by signal 9 (killed)"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%+v.Error() = %q, want %q", tc.e, got, tc.want)
		}
	}
}
