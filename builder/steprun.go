package builder

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"minibuild/exec"
)

// execRun runs a RUN step in the sandbox (package exec) on the overlay of
// the parent chain; the upper directory becomes the layer. Output goes to
// out as it comes.
func (bd *build) execRun(ctx context.Context, sr *stepRun, chain []chainLayer, v *vertex, out *runOutput) (_ *chainLayer, err error) {
	op := sr.step.Run
	if len(chain) == 0 {
		return nil, errors.New("nothing to run: the stage starts FROM scratch and no earlier step added files (RUN needs a shell, or the program of its exec form, in the image)")
	}
	lowers, err := bd.b.snaps.lowers(ctx, chain, v)
	if err != nil {
		return nil, err
	}
	d, err := bd.newStepDirs("run")
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, d.remove()) }()
	if err := writeInlineFiles(d.upper, op.Files); err != nil {
		return nil, err
	}
	spec := exec.Spec{
		Args:    op.Args,
		Env:     op.Env,
		Cwd:     op.WorkingDir,
		User:    op.User,
		Root:    d.root(lowers),
		Network: exec.Network(effectiveNetwork(op.Network, bd.req.Network)),
		Stdout:  out.stream(1),
		Stderr:  out.stream(2),
	}
	bd.b.traced("run")
	if err := bd.runner.Run(ctx, spec); err != nil {
		return nil, runError(err, sr.step)
	}
	if len(op.Files) > 0 {
		if err := os.RemoveAll(filepath.Join(d.upper, heredocDir)); err != nil {
			return nil, err
		}
	}
	return bd.commitLayer(ctx, sr, d.upper, v)
}

// writeInlineFiles puts a RUN's #! heredoc scripts where its command
// looks for them (heredocDir). They are in the upper directory only for
// the run and removed before it is diffed.
func writeInlineFiles(upper string, files []InlineFile) error {
	for _, f := range files {
		p := filepath.Join(upper, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(f.Data), fs.FileMode(f.Mode)); err != nil {
			return err
		}
		if err := os.Chmod(p, fs.FileMode(f.Mode)); err != nil { // not the umask's
			return err
		}
	}
	return nil
}

// runError adds what a user needs to fix a RUN that could not start: a
// shell form needs the shell in the image.
func runError(err error, step *Step) error {
	op := step.Run
	if _, ok := errors.AsType[*exec.ExitError](err); ok {
		return err
	}
	if errors.Is(err, fs.ErrNotExist) && len(op.Args) > 0 {
		shell := step.Env.Shell
		if len(shell) == 0 {
			shell = []string{"/bin/sh", "-c"}
		}
		if len(op.Args) > len(shell) && slices.Equal(op.Args[:len(shell)], shell) {
			return fmt.Errorf("%w (the shell form of RUN runs %s, which the image does not have; use the exec form, RUN [\"program\", \"arg\"], or a base image with a shell)", err, strings.Join(shell, " "))
		}
	}
	return err
}
