package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// binEnv names the minibuild binary under test. TestMain builds one when it
// is unset and sets it, so every test reads it from the environment.
const binEnv = "MINIBUILD_BIN"

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if bin := os.Getenv(binEnv); bin != "" {
		// A relative path is from the module root, where make runs.
		abs := bin
		if !filepath.IsAbs(bin) {
			abs = filepath.Join("..", bin)
		}
		abs, err := filepath.Abs(abs)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "integration: %s=%s: %v\n", binEnv, bin, err)
			return 1
		}
		os.Setenv(binEnv, abs)
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "minibuild-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "minibuild")
	build := exec.Command(goTool(), "build", "-o", bin, "minibuild/cmd/minibuild")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: build minibuild: %v\n", err)
		return 1
	}
	os.Setenv(binEnv, bin)
	return m.Run()
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// Env is one test's minibuild: the binary, a fresh store root, and a
// scratch directory for inputs and outputs.
type Env struct {
	t    *testing.T
	Bin  string
	Root string // passed as --root to every command
	Dir  string // scratch space, removed with the test
}

// NewEnv gives t a fresh store (created on the first command).
func NewEnv(t *testing.T) *Env {
	t.Helper()
	dir := t.TempDir()
	return &Env{t: t, Bin: os.Getenv(binEnv), Root: filepath.Join(dir, "root"), Dir: dir}
}

// Path is a path in the scratch directory.
func (e *Env) Path(elem ...string) string {
	return filepath.Join(append([]string{e.Dir}, elem...)...)
}

// Result is how a command ended.
type Result struct {
	Args     []string
	Stdout   string
	Stderr   string
	ExitCode int // -1 if it did not exit normally (killed)
}

func (r Result) String() string {
	return fmt.Sprintf("minibuild %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.Args, " "), r.ExitCode, r.Stdout, r.Stderr)
}

// Command is the minibuild command line args on e's store, for tests that
// start, kill or run processes concurrently themselves. It is killed when
// ctx ends.
func (e *Env) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, e.Bin, append([]string{"--root", e.Root}, args...)...)
	cmd.Env = append(os.Environ(), "MINIBUILD_ROOT=") // --root is the only store
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// Run runs minibuild args to completion and returns what it did; only
// failing to start it fails the test.
func (e *Env) Run(args ...string) Result {
	e.t.Helper()
	cmd := e.Command(e.t.Context(), args...)
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

// MustRun runs minibuild args, fails the test unless it exits 0, and
// returns its stdout.
func (e *Env) MustRun(args ...string) string {
	e.t.Helper()
	r := e.Run(args...)
	if r.ExitCode != 0 {
		e.t.Fatalf("%v", r)
	}
	return r.Stdout
}

// MustFail runs minibuild args and fails the test if it exits 0.
func (e *Env) MustFail(args ...string) Result {
	e.t.Helper()
	r := e.Run(args...)
	if r.ExitCode == 0 {
		e.t.Fatalf("succeeded, want a failure: %v", r)
	}
	return r
}

// Fsck runs `minibuild fsck` and fails the test on any problem.
func (e *Env) Fsck() {
	e.t.Helper()
	r := e.Run("fsck")
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, " 0 problems") {
		e.t.Fatalf("fsck found problems: %v", r)
	}
}
