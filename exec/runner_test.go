//go:build linux

package exec_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"minibuild/exec"
	"minibuild/exec/exectest"
	"minibuild/internal/testenv"

	"golang.org/x/sys/unix"
)

// TestRunnerRuns checks that steps run by one Runner, each in a spare
// started during the previous one, see what Run's do, whatever the
// previous step was.
func TestRunnerRuns(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	root := exectest.Root(t)
	r := exec.NewRunner()
	defer r.Close()
	for _, tc := range []struct {
		spec   exec.Spec
		script string
		want   string
	}{
		{exec.Spec{Network: exec.NetworkNone}, "ls /sys/class/net", "lo"},
		{exec.Spec{}, "ls /sys/class/net | grep -c -v '^lo$' >/dev/null && echo host", "host"},
		{exec.Spec{User: "app", Hostname: "box"}, "id -u; hostname; cat /etc/hostname", "1000\nbox\nbox"},
		{exec.Spec{Env: []string{"A=b"}, Cwd: "/bin"}, `echo "$A"; pwd`, "b\n/bin"},
		{exec.Spec{Network: exec.NetworkNone}, "cat /sys/class/net/lo/flags", "0x9"},
	} {
		tc.spec.Root = exectest.NewRoot(t, root)
		out, err := runnerSh(r, tc.spec, tc.script)
		if err != nil || strings.TrimSpace(out) != tc.want {
			t.Errorf("Run(%q) = %v, %q; want nil, %q", tc.script, err, strings.TrimSpace(out), tc.want)
		}
		if got := exectest.Tree(t, tc.spec.Root.Upper); got != nil {
			t.Errorf("upper after %q = %q, want empty", tc.script, got)
		}
	}
}

// TestRunnerClose checks that Close kills the spare init, that a Runner
// leaves no process behind, and that it still runs after Close.
func TestRunnerClose(t *testing.T) {
	testenv.RequirePrivileged(t)
	root := exectest.Root(t)
	before := children(t)
	r := exec.NewRunner()
	mustRunTrue(t, r, root)
	spares := newChildren(t, before)
	if len(spares) != 1 {
		t.Fatalf("children after a Run = %v, want one spare init", spares)
	}
	if comm := spareName(t, spares[0]); comm != "minibuild-init" {
		t.Errorf("spare init's name = %q, want minibuild-init", comm)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if after := children(t); !slices.Equal(after, before) {
		t.Errorf("children after Close = %v, want %v as before", after, before)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	mustRunTrue(t, r, root)
	if after := children(t); !slices.Equal(after, before) {
		t.Errorf("children after a Run on a closed Runner = %v, want %v (no spare)", after, before)
	}
}

// TestRunnerSpareKilled checks that a spare that died while it waited is
// replaced.
func TestRunnerSpareKilled(t *testing.T) {
	testenv.RequirePrivileged(t)
	root := exectest.Root(t)
	before := children(t)
	r := exec.NewRunner()
	defer r.Close()
	mustRunTrue(t, r, root)
	for _, pid := range newChildren(t, before) {
		n, _ := strconv.Atoi(pid)
		if err := unix.Kill(n, unix.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	mustRunTrue(t, r, root)
}

// TestRunnerConcurrent runs steps on one Runner from several goroutines.
func TestRunnerConcurrent(t *testing.T) {
	testenv.RequirePrivileged(t)
	root := exectest.Root(t)
	before := children(t)
	r := exec.NewRunner()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 3 {
				s := exec.Spec{Root: exectest.NewRoot(t, root)}
				want := fmt.Sprint(i, j)
				if out, err := runnerSh(r, s, "echo "+want); err != nil || strings.TrimSpace(out) != want {
					t.Errorf("Run(echo %s) = %v, %q", want, err, out)
				}
			}
		})
	}
	wg.Wait()
	r.Close()
	if after := children(t); !slices.Equal(after, before) {
		t.Errorf("children after Close = %v, want %v as before", after, before)
	}
}

// TestRunOutputs checks how the command's output reaches the Spec's
// writers: one writer for both streams keeps their order, an *os.File is
// the command's own descriptor, nil discards.
func TestRunOutputs(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	root := exectest.Root(t)
	var both bytes.Buffer
	s := exec.Spec{Args: []string{"/bin/sh", "-c", "echo 1; echo 2 >&2; echo 3; echo 4 >&2"}, Root: exectest.NewRoot(t, root), Stdout: &both, Stderr: &both}
	if err := exec.Run(context.Background(), s); err != nil || both.String() != "1\n2\n3\n4\n" {
		t.Errorf("Run with one writer = %v, %q; want nil, %q", err, both.String(), "1\n2\n3\n4\n")
	}

	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var errOut bytes.Buffer
	s = exec.Spec{Args: []string{"/bin/sh", "-c", "readlink /proc/self/fd/1; echo err >&2"}, Root: exectest.NewRoot(t, root), Stdout: f, Stderr: &errOut}
	if err := exec.Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	// The sandbox cannot resolve a host path: readlink shows the file's
	// path relative to nothing it can see, not a pipe.
	if strings.HasPrefix(string(got), "pipe:") || errOut.String() != "err\n" {
		t.Errorf("stdout to a file reads %q, stderr %q; want the file itself and %q", got, errOut.String(), "err\n")
	}

	s = exec.Spec{Args: []string{"/bin/sh", "-c", "echo lost; echo lost >&2"}, Root: exectest.NewRoot(t, root)}
	if err := exec.Run(context.Background(), s); err != nil {
		t.Errorf("Run with nil writers = %v", err)
	}
}

// TestRunnerDiesWithMinibuild kills, with SIGKILL, a process that ran a
// step with a Runner and is running another, and checks that the running
// sandbox and the spare die too (parent-death signals), leaving no
// process.
func TestRunnerDiesWithMinibuild(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	lower := exectest.Root(t)
	r := exectest.NewRoot(t, lower)
	cmd, pids := startHelper(t, lower, r, "sleep 7654330 & echo started; sleep 7654331")
	if len(pids) != 2 {
		cmd.Process.Kill()
		t.Fatalf("helper's children = %v, want the running sandbox and the spare", pids)
	}
	killHelper(t, cmd, pids)
	for _, marker := range []string{"7654330", "7654331"} {
		if p := processes(t, marker); p != nil {
			t.Errorf("processes left after the caller was killed: %q", p)
		}
	}
}

// mustRunTrue runs true on r in a fresh root over lower.
func mustRunTrue(t *testing.T, r *exec.Runner, lower string) {
	t.Helper()
	s := exec.Spec{Args: []string{"true"}, Root: exectest.NewRoot(t, lower)}
	if err := r.Run(context.Background(), s); err != nil {
		t.Fatalf("Run(true) = %v", err)
	}
}

// spareName returns the name (comm) of a spare init, once it has set it:
// it starts with the name of what it was started by ("exe", "5").
func spareName(t *testing.T, pid string) string {
	t.Helper()
	var comm []byte
	for range 500 {
		var err error
		if comm, err = os.ReadFile("/proc/" + pid + "/comm"); err != nil {
			t.Fatal(err)
		}
		if string(comm) == "minibuild-init\n" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return strings.TrimSpace(string(comm))
}

// newChildren returns the children of this process that are not in
// before.
func newChildren(t *testing.T, before []string) []string {
	t.Helper()
	var out []string
	for _, pid := range children(t) {
		if !slices.Contains(before, pid) {
			out = append(out, pid)
		}
	}
	return out
}

// runnerSh is sh on r.
func runnerSh(r *exec.Runner, s exec.Spec, script string) (string, error) {
	out := newOutput("")
	s.Args = []string{"/bin/sh", "-c", script}
	s.Stdout, s.Stderr = out, out
	err := r.Run(context.Background(), s)
	return out.String(), err
}
