//go:build linux

package exec_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"minibuild/exec"
	"minibuild/exec/exectest"
	"minibuild/internal/testenv"

	"golang.org/x/sys/unix"
)

func TestRunKillsDaemons(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	s := exec.Spec{Root: exectest.NewRoot(t, exectest.Root(t))}
	// No wait and no retry below: the kernel kills the rest of a PID
	// namespace before its init's exit is reported.
	mustSh(t, s, "sleep 7654321 & setsid sleep 7654322 & echo started")
	for _, marker := range []string{"7654321", "7654322"} {
		if p := processes(t, marker); p != nil {
			t.Errorf("processes left after Run: %q", p)
		}
	}
}

func TestRunCancel(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	s := exec.Spec{Root: exectest.NewRoot(t, exectest.Root(t))}
	out, err := runUntil(t, s, "sleep 7654323 & echo started; sleep 7654324", "started")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled; output:\n%s", err, out)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Errorf("Run = %v, want no *ExitError for a cancelled run", err)
	}
	for _, marker := range []string{"7654323", "7654324"} {
		if p := processes(t, marker); p != nil {
			t.Errorf("processes left after cancel: %q", p)
		}
	}
	if got := exectest.Tree(t, s.Root.Work); got != nil {
		t.Errorf("work dir after cancel = %q, want empty", got)
	}
}

func TestRunCanceledBeforeStart(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := exec.Run(ctx, exec.Spec{Args: []string{"true"}, Root: exectest.NewRoot(t, exectest.Root(t))})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run(canceled ctx) = %v, want context.Canceled", err)
	}
}

func TestRunExitCode(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	s := exec.Spec{Root: exectest.NewRoot(t, exectest.Root(t))}
	out, err := sh(t, s, "echo output; exit 3")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Code != 3 || ee.Signal != 0 {
		t.Fatalf("Run(exit 3) = %v, want *ExitError{Code: 3}", err)
	}
	if got, want := err.Error(), "exit code 3"; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
	if out != "output\n" {
		t.Errorf("output = %q, want %q", out, "output\n")
	}
}

// TestRunLeavesNothing mixes successful, failing and cancelled runs, all on
// the same upper and work directories, and checks that no mount, process
// or work file remains. Only mounts naming this test's directories are
// compared: other programs may mount things on the host meanwhile.
func TestRunLeavesNothing(t *testing.T) {
	testenv.RequirePrivileged(t)
	lower := exectest.Root(t)
	s := exec.Spec{Root: exectest.NewRoot(t, lower)}
	dir := filepath.Dir(s.Root.Upper)
	before := children(t)
	for i := range 100 {
		var err error
		switch i % 3 {
		case 0:
			_, err = sh(t, s, "true")
		case 1:
			_, err = sh(t, s, "sleep 7654325 & exit 7")
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.Code == 7 {
				err = nil
			}
		case 2:
			_, err = runUntil(t, s, "sleep 7654326 & echo started; sleep 7654327", "started")
			if errors.Is(err, context.Canceled) {
				err = nil
			}
		}
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	for _, file := range []string{"/proc/self/mountinfo", "/proc/thread-self/mountinfo"} {
		for _, d := range []string{dir, lower} {
			if m := mountsMentioning(t, file, d); m != nil {
				t.Errorf("%s after 100 runs mentions %s:\n%q", file, d, m)
			}
		}
	}
	// Sandbox inits are this process's children, checked below; a global
	// search would also find other minibuild builds on the machine.
	for _, marker := range []string{"7654325", "7654326", "7654327"} {
		if p := processes(t, marker); p != nil {
			t.Errorf("processes left after 100 runs: %q", p)
		}
	}
	if after := children(t); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("child processes = %v, want %v as before the runs", after, before)
	}
	if got := exectest.Tree(t, s.Root.Upper); got != nil {
		t.Errorf("upper after 100 runs = %q, want empty", got)
	}
	if got := exectest.Tree(t, s.Root.Work); got != nil {
		t.Errorf("work after 100 runs = %q, want empty", got)
	}
	if _, err := os.Stat(s.Root.Work); err != nil {
		t.Errorf("work dir: %v, want it kept", err)
	}
}

// TestRunDiesWithMinibuild kills the process that called Run with SIGKILL
// and checks that the sandbox and everything in it die too (the init's
// parent-death signal), leaving no process or mount.
func TestRunDiesWithMinibuild(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	lower := exectest.Root(t)
	r := exectest.NewRoot(t, lower)
	cmd, pids := startHelper(t, lower, r, "sleep 7654328 & echo started; sleep 7654329")
	killHelper(t, cmd, pids)
	for _, marker := range []string{"7654328", "7654329"} {
		if p := processes(t, marker); p != nil {
			t.Errorf("processes left after the caller was killed: %q", p)
		}
	}
	if m := mountsMentioning(t, "/proc/self/mountinfo", filepath.Dir(r.Upper)); m != nil {
		t.Errorf("mounts left after the caller was killed: %q", m)
	}
}

// startHelper starts the helper process on script, which must print
// "started", and returns it once it did, with the helper's children: the
// sandbox running script and the Runner's spare init.
func startHelper(t *testing.T, lower string, r exec.RootSpec, script string) (*osexec.Cmd, []string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := osexec.Command(self, helperArg, lower, r.Upper, r.Work, script)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "started\n" {
		cmd.Process.Kill()
		t.Fatalf("helper said %q, %v; want started", line, err)
	}
	// The spare is started while the sandbox starts: wait for both.
	var kids []string
	for range 500 {
		kids = kids[:0]
		for _, pid := range pids(t) {
			if ppid(t, pid) == strconv.Itoa(cmd.Process.Pid) {
				kids = append(kids, pid)
			}
		}
		if len(kids) >= 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cmd, kids
}

// killHelper kills the helper with SIGKILL and waits until its children
// pids are gone. A pidfd becomes readable once its process is gone, and
// the kernel reaps the rest of a PID namespace before its init.
func killHelper(t *testing.T, cmd *osexec.Cmd, pids []string) {
	t.Helper()
	var fds []int
	for _, pid := range pids {
		n, _ := strconv.Atoi(pid)
		fd, err := unix.PidfdOpen(n, 0)
		if err != nil {
			cmd.Process.Kill()
			t.Fatal(err)
		}
		defer unix.Close(fd)
		fds = append(fds, fd)
	}
	if len(fds) == 0 {
		cmd.Process.Kill()
		t.Fatal("sandbox process not found")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	for _, fd := range fds {
		if _, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, -1); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRunSurvivesThreadExits runs sandboxes while WithRoot ends OS
// threads (as it does by design): the thread that forked a sandbox must
// not be one of them, or the parent-death signal kills the sandbox.
func TestRunSurvivesThreadExits(t *testing.T) {
	testenv.RequirePrivileged(t)
	lower := exectest.Root(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := exectest.NewRoot(t, lower)
				if err := exec.WithRoot(context.Background(), r, func(string) error { return nil }); err != nil {
					t.Errorf("WithRoot = %v", err)
					return
				}
			}
		})
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	for i := range 30 {
		s := exec.Spec{Root: exectest.NewRoot(t, lower)}
		if out, err := sh(t, s, "sleep 0.02"); err != nil {
			t.Fatalf("run %d: %v; output:\n%s", i, err, out)
		}
	}
}
