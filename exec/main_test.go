package exec_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"minibuild/exec"
)

// helperArg makes the test binary run helper instead of the tests: a
// stand-in for minibuild that a test can kill.
const helperArg = "__exec-test-helper"

// TestMain lets this test binary serve as the sandbox init, as
// cmd/minibuild's main does (Run re-executes /proc/self/exe), and as the
// helper process.
func TestMain(m *testing.M) {
	if exec.IsInit() {
		exec.Init()
	}
	if len(os.Args) > 1 && os.Args[1] == helperArg {
		os.Exit(helper(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// helper runs a script in a sandbox with a Runner, which starts a spare
// init meanwhile: args are lower, upper, work, script.
func helper(args []string) int {
	if len(args) != 4 {
		fmt.Fprintf(os.Stderr, "usage: %s lower upper work script\n", helperArg)
		return 2
	}
	r := exec.NewRunner()
	defer r.Close()
	err := r.Run(context.Background(), exec.Spec{
		Args:   []string{"/bin/sh", "-c", args[3]},
		Root:   exec.RootSpec{Lower: args[:1], Upper: args[1], Work: args[2]},
		Stdout: os.Stdout,
		Stderr: os.Stderr,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
