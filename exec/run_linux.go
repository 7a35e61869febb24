package exec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// waitDelay bounds how long Run waits for the output pipes to drain once
// the sandbox's PID 1 has exited. The kernel has killed every process of
// the PID namespace by then, so only a descriptor smuggled out of the
// sandbox could hold a pipe open.
const waitDelay = 5 * time.Second

// Run runs s.Args in a new sandbox and waits for it (see the package
// documentation for what the sandbox is). It returns nil when the command
// exits with status 0, an [*ExitError] for any other status, and an error
// saying what failed when the sandbox cannot be set up or the
// command cannot be executed ("exec /bin/sh: no such file or directory",
// which wraps fs.ErrNotExist; a bad USER wraps [ErrUnknownUser]).
//
// When ctx is done, Run kills the sandbox's PID 1 with SIGKILL, which makes
// the kernel kill every other process in it, and returns ctx.Err()
// wrapped.
//
// Whatever happens, when Run returns no process or mount of the sandbox
// is left, Work is empty, and the mountpoints the sandbox created in Upper
// are removed. Upper then holds the command's changes; after an error
// other than [*ExitError] it may hold partial changes and is best
// discarded.
//
// Run never reads the caller's stdin; the command's is /dev/null.
func Run(ctx context.Context, s Spec) error {
	if err := s.validate(); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("run %s: %w", s.Args[0], err)
	}
	r := &Runner{oneShot: true}
	defer r.Close()
	return run(ctx, s, r)
}

// run runs s in a sandbox whose init comes from r.
func run(ctx context.Context, s Spec, r *Runner) error {
	p := r.take()
	err := prepareRoot(s.Root)
	if err == nil {
		err = runSandbox(ctx, s, r, p)
	} else {
		p.discard()
	}
	if cerr := clearDir(s.Root.Work); cerr != nil {
		return errors.Join(err, cerr)
	}
	return err
}

// runSandbox runs s in the sandbox of init p. An init that dies, killed,
// before it reports anything (a spare killed while it waited, by the OOM
// killer say) is replaced once: nothing of it is left to clean up but
// Work.
func runSandbox(ctx context.Context, s Spec, r *Runner, p *initProc) error {
	cfg, err := json.Marshal(newInitConfig(s))
	if err != nil {
		p.discard()
		return fmt.Errorf("run %s: %w", s.Args[0], err)
	}
	for retried := false; ; retried = true {
		lost, err := runIn(ctx, s, cfg, p)
		if !lost || retried {
			return err
		}
		if err := clearDir(s.Root.Work); err != nil {
			return err
		}
		p = r.retry(p)
	}
}

// runIn runs s, whose config is cfg, in p. lost reports an init that
// failed to start or died before it reported anything.
func runIn(ctx context.Context, s Spec, cfg []byte, p *initProc) (lost bool, err error) {
	if err := p.ready(); err != nil {
		p.discard()
		return true, fmt.Errorf("start sandbox for %s: %w", s.Args[0], err)
	}
	out, err := openOutputs(s.Stdout, s.Stderr)
	if err != nil {
		p.discard()
		return false, err
	}
	// From here on the init is killed when ctx is done, which makes the
	// kernel kill every other process of its PID namespace.
	stop := context.AfterFunc(ctx, p.kill)
	defer stop()
	sendErr := p.sendConfig(cfg, out.files[0], out.files[1])
	out.closeSent()
	out.start()
	st := readStatus(p.status)
	<-p.exited
	p.release()
	outErr := out.wait(waitDelay)
	if !st.heard && ctx.Err() == nil && signaled(p.waitErr) {
		return true, fmt.Errorf("sandbox init for %s: %w", s.Args[0], p.waitErr)
	}
	err = result(ctx, s, st, p.waitErr, sendErr, outErr)
	if cerr := removeStubs(s.Root.Upper, st.stubs); cerr != nil {
		return false, errors.Join(err, cerr)
	}
	return false, err
}

// signaled reports whether waitErr says a signal killed the process.
func signaled(waitErr error) bool {
	var ee *osexec.ExitError
	if !errors.As(waitErr, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled()
}

func newInitConfig(s Spec) initConfig {
	return initConfig{
		Protocol: protocolVersion,
		Args:     s.Args,
		Env:      s.Env,
		Cwd:      s.Cwd,
		User:     s.User,
		Hostname: s.hostname(),
		Network:  s.Network,
		Mounts:   s.Mounts(),
		Upper:    s.Root.Upper,
		Work:     s.Root.Work,
		Merged:   s.Root.merged(),
	}
}

// result turns what Run observed into its error: the init's status
// messages, its wait status, the error sending its config and the error
// copying the command's output. A command that ran to a zero exit wins
// over a cancellation that came too late to matter.
func result(ctx context.Context, s Spec, st status, waitErr, sendErr, outErr error) error {
	switch {
	case waitErr == nil && st.started && outErr == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("run %s: %w", s.Args[0], ctx.Err())
	case st.err != nil:
		return st.err
	case !st.started:
		cause := errors.Join(waitErr, sendErr)
		if cause == nil {
			cause = errors.New("exited before starting the command")
		}
		return fmt.Errorf("sandbox init for %s: %w", s.Args[0], cause)
	case waitErr == nil:
		return fmt.Errorf("output of %s: %w", s.Args[0], outErr)
	}
	var ee *osexec.ExitError
	if !errors.As(waitErr, &ee) {
		return fmt.Errorf("wait for %s: %w", s.Args[0], waitErr)
	}
	ws, _ := ee.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return &ExitError{Code: 128 + int(ws.Signal()), Signal: ws.Signal()}
	}
	return &ExitError{Code: ws.ExitStatus()}
}

// prepareRoot makes Upper and Work exist, empties Work, and gives Upper the mode and owner of the topmost lower's root, which
// overlay shows as "/" (containerd's overlay snapshotter does the same).
func prepareRoot(r RootSpec) error {
	if err := os.MkdirAll(r.Upper, 0o755); err != nil {
		return fmt.Errorf("prepare root: %w", err)
	}
	if err := os.MkdirAll(r.Work, 0o700); err != nil {
		return fmt.Errorf("prepare root: %w", err)
	}
	if err := clearDir(r.Work); err != nil {
		return err
	}
	if len(r.Lower) == 0 {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Stat(r.Lower[0], &st); err != nil {
		return fmt.Errorf("prepare root: lowerdir %s: %w", r.Lower[0], err)
	}
	if err := unix.Chown(r.Upper, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("prepare root: %w", err)
	}
	if err := unix.Chmod(r.Upper, st.Mode&0o7777); err != nil {
		return fmt.Errorf("prepare root: %w", err)
	}
	return nil
}

// prepareMountpoint is prepareRoot plus the directory where an in-process
// step mounts the root.
func prepareMountpoint(r RootSpec) error {
	if err := prepareRoot(r); err != nil {
		return err
	}
	if err := os.Mkdir(r.merged(), 0o755); err != nil {
		return fmt.Errorf("prepare root: %w", err)
	}
	return nil
}

// clearDir removes everything inside dir, keeping dir. Overlay's work
// directory holds mode-000 directories; root removes them regardless.
func clearDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("clear %s: %w", dir, err)
	}
	var errs []error
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("clear %s: %w", dir, errors.Join(errs...))
	}
	return nil
}
