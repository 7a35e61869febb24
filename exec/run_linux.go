package exec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"runtime"
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
	err := prepareRoot(s.Root)
	if err == nil {
		err = writeEtcFiles(s)
	}
	if err == nil {
		err = runSandbox(ctx, s)
	}
	if cerr := clearDir(s.Root.Work); cerr != nil {
		return errors.Join(err, cerr)
	}
	return err
}

func runSandbox(ctx context.Context, s Spec) error {
	// The kernel sends the init its parent-death signal when the thread
	// that forked it exits, not the process, and Go ends any thread that a
	// goroutine leaves while locked to it (WithRoot does so on purpose).
	// Holding this thread until the init is reaped keeps it alive and out
	// of other goroutines' hands (golang/go#27505).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("start sandbox: %w", err)
	}
	defer cfgW.Close()
	defer cfgR.Close()
	statR, statW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("start sandbox: %w", err)
	}
	defer statR.Close()
	defer statW.Close()

	cmd := osexec.CommandContext(ctx, "/proc/self/exe", initArg)
	cmd.Args[0] = "minibuild"
	// The init's own environment, not the command's (which travels in the
	// config). It does one thing at a time: a single P keeps the Go
	// runtime from starting threads that exec then has to kill, and skips
	// its cgroup probing.
	cmd.Env = []string{"GOMAXPROCS=1"}
	cmd.Stdout, cmd.Stderr = s.Stdout, s.Stderr
	cmd.ExtraFiles = []*os.File{cfgR, statW} // configFD, statusFD
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: cloneFlags(s.Network),
		// The init dies with minibuild; as PID 1 it takes the sandbox
		// with it. Its own process group keeps a terminal's Ctrl-C away:
		// minibuild cancels, which kills the sandbox as a whole.
		Pdeathsig: syscall.SIGKILL,
		Setpgid:   true,
	}
	cmd.WaitDelay = waitDelay
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start sandbox for %s: %w", s.Args[0], err)
	}
	cfgR.Close()
	statW.Close()
	werr := writeConfig(cfgW, s)
	cfgW.Close()
	st := readStatus(statR)
	waitErr := cmd.Wait()
	err = result(ctx, s, st, waitErr, werr)
	if cerr := removeStubs(s.Root.Upper, st.stubs); cerr != nil {
		return errors.Join(err, cerr)
	}
	return err
}

func cloneFlags(n Network) uintptr {
	f := uintptr(unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC)
	if n == NetworkNone {
		f |= unix.CLONE_NEWNET
	}
	return f
}

func writeConfig(w *os.File, s Spec) error {
	cfg := initConfig{
		Args:     s.Args,
		Env:      s.Env,
		Cwd:      s.Cwd,
		User:     s.User,
		Hostname: s.hostname(),
		Network:  s.Network,
		Mounts:   s.Mounts(),
		Upper:    s.Root.Upper,
		Merged:   s.Root.merged(),
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// result turns what Run observed into its error. A command that ran to a
// zero exit wins over a cancellation that came too late to matter.
func result(ctx context.Context, s Spec, st status, waitErr, werr error) error {
	switch {
	case waitErr == nil && st.started:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("run %s: %w", s.Args[0], ctx.Err())
	case st.err != nil:
		return st.err
	case !st.started:
		cause := errors.Join(waitErr, werr)
		if cause == nil {
			cause = errors.New("exited before starting the command")
		}
		return fmt.Errorf("sandbox init for %s: %w", s.Args[0], cause)
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

// prepareRoot makes Upper and Work exist, empties Work and lays it out,
// and gives Upper the mode and owner of the topmost lower's root, which
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
	for _, d := range []string{r.ovlWork(), r.merged()} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return fmt.Errorf("prepare root: %w", err)
		}
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

// writeEtcFiles writes the sandbox's /etc/hosts and /etc/hostname into
// Work. hosts is the host's (for names a host network resolves through
// it) plus the sandbox's host name, which programs expect to resolve.
func writeEtcFiles(s Spec) error {
	hosts, err := os.ReadFile("/etc/hosts")
	if err != nil {
		hosts = []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	}
	if len(hosts) > 0 && !bytes.HasSuffix(hosts, []byte("\n")) {
		hosts = append(hosts, '\n')
	}
	hosts = append(hosts, "127.0.0.1\t"+s.hostname()+"\n"...)
	if err := os.WriteFile(s.Root.hostsFile(), hosts, 0o644); err != nil {
		return fmt.Errorf("prepare root: %w", err)
	}
	if err := os.WriteFile(s.Root.hostnameFile(), []byte(s.hostname()+"\n"), 0o644); err != nil {
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
