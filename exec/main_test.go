package exec_test

import (
	"os"
	"testing"

	"minibuild/exec"
)

// TestMain lets this test binary serve as the sandbox init, as
// cmd/minibuild's main does: Run re-executes /proc/self/exe.
func TestMain(m *testing.M) {
	if exec.IsInit() {
		exec.Init()
	}
	os.Exit(m.Run())
}
