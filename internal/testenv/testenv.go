package testenv

import (
	"os"
	osexec "os/exec"
	"testing"
)

// PrivilegedEnv is the variable `make test` sets. When it is "1", a test that
// needs privileges it does not have fails instead of skipping: a skipped
// safety test is a hole.
const PrivilegedEnv = "MINIBUILD_PRIVILEGED"

// RequirePrivileged skips t unless the process can mount and create
// namespaces (it runs as uid 0). Under MINIBUILD_PRIVILEGED=1 it fails t
// instead of skipping it.
func RequirePrivileged(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv(PrivilegedEnv) == "1" {
		t.Fatalf("test needs root (uid 0) but runs as uid %d with %s=1", os.Geteuid(), PrivilegedEnv)
	}
	t.Skipf("test needs root (uid 0); run `make test` as root (%s=1)", PrivilegedEnv)
}

// RequireTool skips t when the external program name is not installed, and
// fails it under MINIBUILD_PRIVILEGED=1, where `.ci/run` has installed every
// tool the tests use.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := osexec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv(PrivilegedEnv) == "1" {
		t.Fatalf("test needs %s (installed by .ci/run): %v", name, err)
	}
	t.Skipf("test needs %s: %v", name, err)
	return ""
}
