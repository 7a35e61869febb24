//go:build linux

package exec_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	osexec "os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"minibuild/exec"
	"minibuild/exec/exectest"
	"minibuild/internal/testenv"
)

// buildInitProgram builds the init program as `go generate ./exec` does.
func buildInitProgram(t *testing.T) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "minibuild-init")
	cmd := osexec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-trimpath", "-buildvcs=false", "-ldflags=-s", "-o", out, "./cmd/minibuild-init")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build init program: %v\n%s", err, b)
	}
	prog, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return prog
}

// TestEmbeddedInitIsCurrent checks that the init program `go generate`
// left in initbin, which builds with -tags embedinit embed, is what the
// sources build now.
func TestEmbeddedInitIsCurrent(t *testing.T) {
	got, err := os.ReadFile("initbin/minibuild-init")
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("no initbin/minibuild-init: `go generate ./exec` has not run here, and only -tags embedinit builds need it")
	}
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, buildInitProgram(t)) {
		t.Errorf("initbin/minibuild-init is not what the sources build: run `go generate ./exec` (make build does)")
	}
}

// TestRunnerInitProgram runs steps with inits started from the init
// program, as a minibuild built with it embedded does.
func TestRunnerInitProgram(t *testing.T) {
	testenv.RequirePrivileged(t)
	root := exectest.Root(t)
	before := children(t)
	r, err := exec.NewRunnerFromProgram(buildInitProgram(t))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, tc := range []struct {
		spec   exec.Spec
		script string
		want   string
	}{
		// PID 1 is the shell; ls sees its own descriptor 3 (the directory
		// it lists), nothing of the init's.
		{exec.Spec{}, "echo $$; ls /proc/self/fd", "1\n0\n1\n2\n3"},
		{exec.Spec{Network: exec.NetworkNone, User: "app"}, "ls /sys/class/net; id -u", "lo\n1000"},
		{exec.Spec{}, "exit 3", "exit code 3"},
	} {
		tc.spec.Root = exectest.NewRoot(t, root)
		out, err := runnerSh(r, tc.spec, tc.script)
		if err != nil {
			out += err.Error()
		}
		if got := strings.TrimSpace(out); got != tc.want {
			t.Errorf("Run(%q) = %q, want %q", tc.script, got, tc.want)
		}
	}
	spares := newChildren(t, before)
	if len(spares) != 1 {
		t.Fatalf("children = %v, want one spare init", spares)
	}
	if exe, err := os.Readlink("/proc/" + spares[0] + "/exe"); err != nil || !strings.HasPrefix(exe, "/memfd:minibuild-init") {
		t.Errorf("spare init runs %q, %v; want the init program's memfd", exe, err)
	}
	if comm := spareName(t, spares[0]); comm != "minibuild-init" {
		t.Errorf("spare init's name = %q, want minibuild-init", comm)
	}
	r.Close()
	if after := children(t); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("children after Close = %v, want %v", after, before)
	}
}
