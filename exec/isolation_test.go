//go:build linux

package exec_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"minibuild/exec"
	"minibuild/exec/exectest"
	"minibuild/internal/testenv"

	"golang.org/x/sys/unix"
)

func TestRunSeesOnlyItsMounts(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	s := exec.Spec{Root: exectest.NewRoot(t, exectest.Root(t))}
	out := mustSh(t, s, "cat /proc/self/mountinfo")
	var want []string
	for _, m := range s.Mounts() {
		want = append(want, m.Target)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			t.Fatalf("mountinfo line %q: too short", line)
		}
		got = append(got, f[4])
		if !slices.Contains(want, f[4]) {
			t.Errorf("sandbox sees mount %s, not one of Spec.Mounts()", f[4])
		}
	}
	for _, p := range []string{"/", "/proc", "/dev", "/dev/pts", "/dev/shm", "/sys", "/etc/resolv.conf", "/etc/hosts", "/etc/hostname"} {
		if !slices.Contains(got, p) {
			t.Errorf("sandbox mounts = %v, want %s among them", got, p)
		}
	}
}

func TestRunSeesOnlyItsProcesses(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	s := exec.Spec{Root: exectest.NewRoot(t, exectest.Root(t))}
	// The shell is PID 1; the glob needs no other process.
	if got := strings.TrimSpace(mustSh(t, s, "echo /proc/[0-9]*")); got != "/proc/1" {
		t.Errorf("processes in sandbox = %q, want /proc/1", got)
	}
	// PIDs 2… went to the init's threads before it exec'd the shell, so
	// only the commands are checked.
	// busybox runs applets in forked children, so ps shows the shell, the
	// sleep and itself, named variously.
	out := mustSh(t, s, "sleep 1000 & ps -o pid,args; true")
	lines := strings.Split(strings.TrimSpace(out), "\n")[1:]
	if len(lines) != 3 || !strings.HasPrefix(strings.TrimSpace(lines[0]), "1 /bin/sh") || !strings.Contains(out, "sleep 1000") {
		t.Errorf("ps in sandbox:\n%s\nwant the shell as PID 1, the sleep and ps, nothing else", out)
	}
}

func TestRunPrivilegedOperationsFail(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	s := exec.Spec{Root: exectest.NewRoot(t, exectest.Root(t))}
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		t.Fatal(err)
	}
	// The device the host's root filesystem lives on. Opening a node for
	// it must fail with EACCES (nodev), whatever device cgroup the host
	// may also have (EPERM).
	disk := fmt.Sprintf("b %d %d", unix.Major(st.Dev), unix.Minor(st.Dev))
	for _, tc := range []struct{ name, script, want string }{
		{"mount", "mount -t tmpfs tmpfs /bin", "denied"},
		{"unshare", "unshare -m true", "not permitted"},
		// 'h' only prints help to the kernel log, in case this ever passed.
		{"sysrq", "echo h > /proc/sysrq-trigger", ""},
		{"proc sys", "echo 1 > /proc/sys/vm/drop_caches", "Read-only file system"},
		// Fails with EPERM, or ENOSYS on kernels without modules.
		{"module", "insmod /bin/busybox", "insmod: can't insert"},
		{"disk node in root", "mknod /disk " + disk + " && head -c 1 /disk", "Permission denied"},
		{"disk node in dev", "mknod /dev/disk " + disk + " && head -c 1 /dev/disk", "Permission denied"},
		{"disk node in shm", "mknod /dev/shm/disk " + disk + " && head -c 1 /dev/shm/disk", "Permission denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := sh(t, s, tc.script)
			if err == nil {
				t.Fatalf("Run(%q) = nil, want an error; output:\n%s", tc.script, out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("Run(%q) output = %q, want it to mention %q", tc.script, out, tc.want)
			}
		})
	}
}

func TestRunCannotWriteOutsideRoot(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	sentinel := filepath.Join(t.TempDir(), "minibuild-sentinel")
	if err := os.WriteFile(sentinel, []byte("untouched"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := exec.Spec{Root: exectest.NewRoot(t, exectest.Root(t))}
	script := `{ echo changed > ` + sentinel + `; } 2>/dev/null; find / -name minibuild-sentinel 2>/dev/null; ` +
		`cd /proc/1/root/../../.. && ls`
	out, _ := sh(t, s, script)
	if strings.Contains(out, "minibuild-sentinel") || strings.Contains(out, "tmp") {
		t.Errorf("sandbox reached the host's files:\n%s", out)
	}
	if b, err := os.ReadFile(sentinel); err != nil || string(b) != "untouched" {
		t.Errorf("host sentinel = %q, %v; want untouched", b, err)
	}
	if out, err := sh(t, s, "touch /sys/x"); err == nil || !strings.Contains(out, "Read-only") {
		t.Errorf("touch /sys/x = %v, %q; want a read-only error", err, out)
	}
}

func TestRunCapabilities(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	root := exectest.Root(t)
	for _, tc := range []struct {
		user                     string
		eff, prm, bnd, inh, ambi string
	}{
		{"", "00000000a80425fb", "00000000a80425fb", "00000000a80425fb", "0000000000000000", "0000000000000000"},
		{"app", "0000000000000000", "0000000000000000", "00000000a80425fb", "0000000000000000", "0000000000000000"},
	} {
		t.Run("user="+tc.user, func(t *testing.T) {
			out := mustSh(t, exec.Spec{User: tc.user, Root: exectest.NewRoot(t, root)}, "cat /proc/self/status")
			for _, f := range [][2]string{{"CapEff", tc.eff}, {"CapPrm", tc.prm}, {"CapBnd", tc.bnd}, {"CapInh", tc.inh}, {"CapAmb", tc.ambi}} {
				if got := statusField(out, f[0]); got != f[1] {
					t.Errorf("%s = %s, want %s", f[0], got, f[1])
				}
			}
			if got := statusField(out, "NoNewPrivs"); got != "0" {
				t.Errorf("NoNewPrivs = %s, want 0 (as in Docker)", got)
			}
		})
	}
}

func TestRunUsers(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	root := exectest.Root(t)
	for _, tc := range []struct {
		user, uid, gid, groups, home, id string
	}{
		{"", "0", "0", "44", "/root", "uid=0(root) gid=0(root) groups=44(video)"},
		{"root", "0", "0", "44", "/root", "uid=0(root) gid=0(root) groups=44(video)"},
		{"app", "1000", "1000", "29 44", "/home/app", "uid=1000(app) gid=1000(app) groups=29(audio),44(video)"},
		{"1000", "1000", "1000", "29 44", "/home/app", "uid=1000(app) gid=1000(app) groups=29(audio),44(video)"},
		// An explicit group means no supplementary groups (runc's rule).
		{"1000:1000", "1000", "1000", "", "/home/app", "uid=1000(app) gid=1000(app)"},
		{"app:audio", "1000", "29", "", "/home/app", "uid=1000(app) gid=29(audio)"},
		{"4242", "4242", "0", "", "/", "uid=4242 gid=0(root)"},
		{"4242:4343", "4242", "4343", "", "/", "uid=4242 gid=4343"},
	} {
		t.Run("user="+tc.user, func(t *testing.T) {
			out := mustSh(t, exec.Spec{User: tc.user, Root: exectest.NewRoot(t, root)}, `cat /proc/self/status; echo "HOME=$HOME"; id`)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			for _, f := range [][2]string{{"Uid", strings.Repeat(tc.uid+" ", 4)}, {"Gid", strings.Repeat(tc.gid+" ", 4)}, {"Groups", tc.groups}} {
				if got := statusField(out, f[0]); got != strings.TrimSpace(f[1]) {
					t.Errorf("%s = %q, want %q", f[0], got, strings.TrimSpace(f[1]))
				}
			}
			if !slices.Contains(lines, "HOME="+tc.home) {
				t.Errorf("output lacks HOME=%s:\n%s", tc.home, out)
			}
			if got := lines[len(lines)-1]; got != tc.id {
				t.Errorf("id = %q, want %q", got, tc.id)
			}
		})
	}
}

func TestRunEnvironment(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	root := exectest.Root(t)
	for _, tc := range []struct {
		name   string
		spec   exec.Spec
		script string
		want   string
	}{
		{"default PATH and HOME", exec.Spec{}, `echo "$PATH $HOME"`, exec.DefaultPath + " /root"},
		{"given PATH and HOME", exec.Spec{Env: []string{"PATH=/bin", "HOME=/x", "A=b"}}, `echo "$PATH $HOME $A"`, "/bin /x b"},
		{"cwd", exec.Spec{Cwd: "/bin"}, "pwd", "/bin"},
		{"umask", exec.Spec{}, "umask", "0022"},
		{"stdin", exec.Spec{}, "readlink /proc/self/fd/0; cat", "/dev/null"},
		{"default hostname", exec.Spec{}, "hostname; cat /etc/hostname; grep -c minibuild /etc/hosts", "minibuild\nminibuild\n1"},
		{"hostname", exec.Spec{Hostname: "box"}, "hostname; cat /etc/hostname; ping -c1 -W1 box >/dev/null && echo resolves", "box\nbox\nresolves"},
		{"network none", exec.Spec{Network: exec.NetworkNone}, "ls /sys/class/net; cat /sys/class/net/lo/flags", "lo\n0x9"},
		{"dev", exec.Spec{}, "head -c 4 /dev/zero | wc -c; echo x > /dev/null; ls /dev/pts; test -c /dev/pts/ptmx && echo pts", "4\nptmx\npts"},
		{"etc read-only", exec.Spec{}, "echo x >> /etc/hosts || echo refused", "refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Root = exectest.NewRoot(t, root)
			out, err := sh(t, tc.spec, tc.script)
			got := strings.TrimSpace(out)
			if tc.name == "etc read-only" {
				got = got[strings.LastIndexByte(got, '\n')+1:]
			}
			if err != nil || got != tc.want {
				t.Errorf("Run(%q) = %v, %q; want nil, %q", tc.script, err, got, tc.want)
			}
		})
	}
}

func TestRunEtcFilesFromHost(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	resolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		t.Skipf("host has no /etc/resolv.conf: %v", err)
	}
	s := exec.Spec{Root: exectest.NewRoot(t, exectest.Root(t))}
	if got := mustSh(t, s, "cat /etc/resolv.conf"); got != string(resolv) {
		t.Errorf("sandbox /etc/resolv.conf = %q, want the host's %q", got, resolv)
	}
	if got := exectest.Tree(t, s.Root.Upper); got != nil {
		t.Errorf("upper after reading /etc files = %q, want empty", got)
	}
}

// TestRunClosesInheritedDescriptors checks that a descriptor minibuild
// has without close-on-exec (inherited from whoever started it, say)
// does not reach the step: one for a host directory would let it out of
// its root.
func TestRunClosesInheritedDescriptors(t *testing.T) {
	testenv.RequirePrivileged(t)
	fd, err := unix.Open(t.TempDir(), unix.O_RDONLY|unix.O_DIRECTORY, 0) // no O_CLOEXEC
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	s := exec.Spec{Root: exectest.NewRoot(t, exectest.Root(t))}
	// ls lists its own descriptor 3, the directory it reads.
	out := mustSh(t, s, "ls /proc/self/fd")
	if got := strings.Fields(out); !slices.Equal(got, []string{"0", "1", "2", "3"}) {
		t.Errorf("descriptors in the sandbox = %q, want 0 1 2 and ls's 3 (descriptor %d is open in minibuild)", got, fd)
	}
}
