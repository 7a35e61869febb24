// Command minibuild builds OCI images from Dockerfiles without a daemon.
//
// This package owns flags, signal handling, printing and exit codes; every
// command parses its flags, calls one function of a minibuild package and
// prints what comes back.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"minibuild/exec"
)

// Exit codes. Usage errors exit 2 like most CLIs; 3 and 4 are CI gates.
const (
	exitOK        = 0
	exitFailure   = 1
	exitUsage     = 2
	exitNotCached = 3 // build --expect-cached: a step missed the cache
	exitGate      = 4 // bloat --max-wasted / --min-efficiency exceeded
	exitSignal    = 130
)

// exitError carries an exit code other than exitFailure up to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil { // the command printed the details itself
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// app is the one value every command shares: global flags and streams. It is
// built once in main and passed down; nothing in minibuild is package state.
type app struct {
	root   string // --root
	stdout io.Writer
	stderr io.Writer
}

func main() {
	if exec.IsInit() {
		exec.Init() // a RUN sandbox's init, re-executed by exec.Run; never returns
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	a := &app{stdout: stdout, stderr: stderr}
	cmd := newRootCmd(a)
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ue *usageError
	var ee *exitError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "minibuild: %v\n", err)
		return exitUsage
	case ctx.Err() != nil:
		fmt.Fprintf(stderr, "minibuild: interrupted: %v\n", err)
		return exitSignal
	case errors.As(err, &ee):
		if ee.err != nil {
			fmt.Fprintf(stderr, "minibuild: %v\n", ee.err)
		}
		return ee.code
	default:
		fmt.Fprintf(stderr, "minibuild: %v\n", err)
		return exitFailure
	}
}

// usageError marks bad flags or arguments (exit 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func newRootCmd(a *app) *cobra.Command {
	defaultRoot := os.Getenv("MINIBUILD_ROOT")
	if defaultRoot == "" {
		defaultRoot = "/var/lib/minibuild"
	}
	root := &cobra.Command{
		Use:   "minibuild [flags] [-f Dockerfile] CONTEXT",
		Short: "Build OCI images from a Dockerfile, without a daemon",
		Long: `minibuild builds OCI images from a Dockerfile, step by step, in
overlay-mounted scratch roots, and keeps them in a local OCI-layout store.

  minibuild -f Dockerfile -t app .     build and tag an image
  minibuild explain .                  why each step was (or was not) cached
  minibuild history app                what each instruction added`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&a.root, "root", defaultRoot, "store directory (env MINIBUILD_ROOT)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	addBuildFlags(root, a)
	root.AddCommand(
		newBuildCmd(a),
		newImportCmd(a),
		newImagesCmd(a),
		newInspectCmd(a),
		newSaveCmd(a),
		newRmiCmd(a),
		newFsckCmd(a),
		newPullCmd(a), newPushCmd(a), newTagCmd(a),
		newExplainCmd(a),
		newRunCmd(a), newPruneCmd(a),
		newHistoryCmd(a), newDiffCmd(a), newBloatCmd(a), newRebaseCmd(a),
	)
	return root
}
