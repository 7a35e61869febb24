package exec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// initFailed is the init's exit status when setup fails. The parent reads
// the reason from the status pipe, not from the status.
const initFailed = 125

// Init is the sandbox init: the minibuild binary re-executed by [Run] as
// PID 1 of new mount, PID, UTS and IPC (and maybe network) namespaces. It
// reads its configuration from a pipe, builds the root filesystem, pivots
// into it, drops privileges and execs the command, which becomes PID 1. It
// never returns: on failure it reports the error to the parent and exits.
//
// main must call it first thing when [IsInit] is true, before any other
// work, so that nothing but the Go runtime runs ahead of it. Test binaries
// that call [Run] do the same in TestMain.
func Init() {
	// Capabilities and the bounding set belong to a thread: set them and
	// exec from this one.
	runtime.LockOSThread()
	if os.Getpid() != 1 {
		fmt.Fprintf(os.Stderr, "minibuild: %s is internal to the RUN sandbox\n", initArg)
		os.Exit(2)
	}
	setName("minibuild-init") // not "exe" or "5", the name it was started by
	rep := reporter{f: os.NewFile(statusFD, "status")}
	err := sandboxInit(rep)
	_ = rep.send(initMessage{Err: toWire(err)})
	// NOTE: only cmd calls os.Exit, except here: this process is not
	// minibuild any more but a sandbox that failed to start.
	os.Exit(initFailed)
}

func sandboxInit(rep reporter) error {
	if err := closeOnExec(); err != nil {
		return err
	}
	unix.Umask(0o022) // Docker's; the host's may differ
	warmUp()
	cfg, err := readConfig()
	if err != nil {
		return err
	}
	if cfg.Network == NetworkNone {
		// This thread's own network namespace, which the command
		// inherits when this thread execs it; sysfs, mounted below from
		// this thread, shows it.
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("new network namespace: %w", err)
		}
	}
	if err := buildRoot(cfg, rep); err != nil {
		return err
	}
	if cfg.Network == NetworkNone {
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
		return fmt.Errorf("set hostname: %w", err)
	}
	if err := pivotRoot(cfg.Merged); err != nil {
		return err
	}
	return startCommand(cfg, rep)
}

// setName sets the name ps and top show for the init. exec replaces it
// with the command's.
func setName(name string) {
	if p, err := unix.BytePtrFromString(name); err == nil {
		_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(p)), 0, 0, 0)
	}
}

// closeOnExec makes every descriptor above stderr close-on-exec, so that
// the command gets only stdin, stdout and stderr: the status pipe, the
// init program (see initprog_linux.go) and, above all, whatever minibuild
// itself inherited without close-on-exec from whoever started it (Go does
// not close those when it forks). A descriptor of a host directory would
// let a step escape its root, as in runc's CVE-2024-21626.
func closeOnExec() error {
	err := unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	// Before Linux 5.11.
	entries, rerr := os.ReadDir("/proc/self/fd")
	if rerr != nil {
		return fmt.Errorf("close descriptors on exec: %w", errors.Join(err, rerr))
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
		}
	}
	return nil
}

// warmUp does, while the init waits for its config, the work that does
// not depend on it: encoding/json builds its codecs for a type on first
// use, which is most of the cost of reading a config and sending a
// status message.
func warmUp() {
	var cfg initConfig
	_ = json.Unmarshal([]byte(`{"Mounts":[{}]}`), &cfg)
	_, _ = json.Marshal(initMessage{Stub: &stub{}, Err: &wireError{}})
}

// readConfig waits for the parent: first one byte carrying the command's
// stdout and stderr, which become the init's, then the JSON config.
func readConfig() (initConfig, error) {
	var cfg initConfig
	if err := receiveStdio(); err != nil {
		return cfg, fmt.Errorf("read sandbox config: %w", err)
	}
	f := os.NewFile(configFD, "config")
	defer f.Close()
	if err := json.NewDecoder(f).Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("read sandbox config: %w", err)
	}
	if cfg.Protocol != protocolVersion {
		return cfg, fmt.Errorf("read sandbox config: protocol %d, this init speaks %d (an embedded init program from other sources: rebuild minibuild)", cfg.Protocol, protocolVersion)
	}
	return cfg, nil
}

// receiveStdio receives the command's stdout and stderr and makes them
// descriptors 1 and 2.
func receiveStdio() error {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(2*4))
	n, oobn, _, _, err := unix.Recvmsg(configFD, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return err
	}
	var fds []int
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	for _, m := range msgs {
		if f, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, f...)
		}
	}
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	switch {
	case err != nil:
		return err
	case n != 1 || buf[0] != stdioByte:
		return io.ErrUnexpectedEOF
	case len(fds) != 2:
		return fmt.Errorf("%d descriptors for stdout and stderr, want 2", len(fds))
	}
	for i, fd := range fds {
		if err := unix.Dup3(fd, 1+i, 0); err != nil {
			return fmt.Errorf("set up stdout and stderr: %w", err)
		}
	}
	return nil
}

// buildRoot makes cfg.Mounts, in order, below cfg.Merged, in the init's
// own mount namespace. Mounts are private first, so that nothing mounted
// here propagates to the host, and everything goes away with the
// namespace when its last process exits.
func buildRoot(cfg initConfig, rep reporter) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	hidden, err := prepareScratch(cfg)
	if err != nil {
		return err
	}
	defer hidden.close()
	mp := mountpoints{merged: cfg.Merged, upper: cfg.Upper, report: func(s stub) error {
		return rep.send(initMessage{Stub: &s})
	}}
	var mounted []string
	for _, m := range cfg.Mounts {
		target := filepath.Join(cfg.Merged, m.Target)
		ok, err := prepareTarget(m, target, mounted, mp)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if err := mountAt(m, target, hidden); err != nil {
			return err
		}
		mounted = append(mounted, m.Target)
	}
	if slices.Contains(mounted, "/dev") {
		return devSymlinks(filepath.Join(cfg.Merged, "dev"))
	}
	return nil
}

// prepareTarget makes the mountpoint of m exist at target, or reports
// false when m is to be skipped (see Mount's "nofail", and
// mountpoints.ensure for what the image may hold).
func prepareTarget(m Mount, target string, mounted []string, mp mountpoints) (bool, error) {
	if m.Target == "/" {
		return true, nil
	}
	o := parseOptions(m.Options)
	dir := true
	if o.flags&unix.MS_BIND != 0 {
		fi, err := os.Stat(m.Source)
		if err != nil && o.nofail {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("mount %s: %w", m.Target, err)
		}
		dir = fi.IsDir()
	}
	if parentMount(mounted, m.Target) == "/" {
		return mp.ensure(m.Target, dir)
	}
	// On a filesystem the sandbox mounted: /dev's tmpfs (ours to fill),
	// or /proc and /sys (the kernel's, where a missing path is skipped).
	if _, err := os.Lstat(target); err == nil || !errors.Is(err, os.ErrNotExist) {
		return err == nil, err
	}
	if o.nofail {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return false, fmt.Errorf("mountpoint %s: %w", m.Target, err)
	}
	if dir {
		return true, os.Mkdir(target, 0o755)
	}
	return true, os.WriteFile(target, nil, 0o644)
}

// parentMount returns the mounted target that p lies on.
func parentMount(mounted []string, p string) string {
	best := ""
	for _, m := range mounted {
		if (m == "/" || p == m || strings.HasPrefix(p, m+"/")) && len(m) > len(best) {
			best = m
		}
	}
	return best
}

// devSymlinks adds the links every /dev has (runc's defaults).
func devSymlinks(dev string) error {
	for _, l := range [][2]string{
		{"/proc/self/fd", "fd"},
		{"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"},
		{"pts/ptmx", "ptmx"},
	} {
		if err := os.Symlink(l[0], filepath.Join(dev, l[1])); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create /dev/%s: %w", l[1], err)
		}
	}
	return nil
}

// pivotRoot makes newRoot the root and detaches the old one, runc's way:
// pivot_root(".", ".") stacks the old root on top of the new one, and a
// lazy unmount of "." removes it, leaving no path back to the host.
func pivotRoot(newRoot string) error {
	if err := unix.Chdir(newRoot); err != nil {
		return fmt.Errorf("pivot_root: chdir %s: %w", newRoot, err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		if err == unix.EINVAL {
			// The one common cause; chroot instead would leave the host's
			// root reachable to a step that has CAP_SYS_CHROOT.
			return fmt.Errorf("pivot_root %s: %w (is the host's / an initramfs? a sandbox needs a real root filesystem)", newRoot, err)
		}
		return fmt.Errorf("pivot_root %s: %w", newRoot, err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("pivot_root: detach old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("pivot_root: chdir /: %w", err)
	}
	return nil
}

// startCommand does what remains inside the new root and execs the
// command. Order matters: the user is resolved and the working directory
// created while still root; capabilities are limited before the uid
// changes (the set includes SETUID and SETGID); the parent-death signal,
// which the kernel clears on a credential change, is set again last.
func startCommand(cfg initConfig, rep reporter) error {
	u, err := LookupUser("/", cfg.User)
	if err != nil {
		return err
	}
	cwd := cfg.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if err := os.MkdirAll(cwd, 0o755); err != nil {
		return fmt.Errorf("working directory %s: %w", cwd, err)
	}
	if err := unix.Chdir(cwd); err != nil {
		return fmt.Errorf("working directory %s: %w", cwd, err)
	}
	env := commandEnv(cfg.Env, u)
	path, err := lookPath(cfg.Args[0], env)
	if err != nil {
		return err
	}
	resetIgnoredSignals()
	if err := limitCapabilities(); err != nil {
		return err
	}
	if err := setCredentials(u); err != nil {
		return err
	}
	if err := rep.send(initMessage{Exec: true}); err != nil {
		return err
	}
	err = unix.Exec(path, cfg.Args, env)
	return execError(path, err)
}

func setCredentials(u User) error {
	groups := make([]int, len(u.Groups))
	for i, g := range u.Groups {
		groups[i] = int(g)
	}
	if err := unix.Setgroups(groups); err != nil {
		return fmt.Errorf("set groups %v: %w", u.Groups, err)
	}
	if err := unix.Setresgid(int(u.GID), int(u.GID), int(u.GID)); err != nil {
		return fmt.Errorf("set gid %d: %w", u.GID, err)
	}
	if err := unix.Setresuid(int(u.UID), int(u.UID), int(u.UID)); err != nil {
		return fmt.Errorf("set uid %d: %w", u.UID, err)
	}
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("set parent death signal: %w", err)
	}
	return nil
}

// resetIgnoredSignals undoes SIGHUP or SIGINT being ignored by whoever
// started minibuild (nohup, a shell's background job): exec keeps ignored
// signals ignored, and a step must start with default dispositions.
// Installing a handler is enough, since exec resets handled signals; the
// Go runtime handles every other signal already.
func resetIgnoredSignals() {
	for _, sig := range []os.Signal{syscall.SIGHUP, syscall.SIGINT} {
		if signal.Ignored(sig) {
			signal.Notify(make(chan os.Signal, 1), sig)
		}
	}
}

// commandEnv completes env as Docker does: PATH and HOME when unset.
func commandEnv(env []string, u User) []string {
	out := append([]string(nil), env...)
	if _, ok := lookupEnv(env, "PATH"); !ok {
		out = append(out, "PATH="+DefaultPath)
	}
	if _, ok := lookupEnv(env, "HOME"); !ok {
		out = append(out, "HOME="+u.Home)
	}
	return out
}

func lookupEnv(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// notInPath is the error for a command name that no PATH entry holds.
type notInPath struct{}

func (notInPath) Error() string { return "executable file not found in $PATH" }
func (notInPath) Unwrap() error { return unix.ENOENT }

// lookPath finds name in the sandbox's PATH, like a shell (and runc) would.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path, _ := lookupEnv(env, "PATH")
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", &os.PathError{Op: "exec", Path: name, Err: notInPath{}}
}

// execError explains an exec failure. ENOENT for a file that exists means
// its interpreter (the ELF loader or the #! line's program) is missing, a
// classic puzzle with images built for another libc.
func execError(path string, err error) error {
	pe := &os.PathError{Op: "exec", Path: path, Err: err}
	if errors.Is(err, unix.ENOENT) {
		if _, serr := os.Stat(path); serr == nil {
			return fmt.Errorf("%w (the file exists: its interpreter, the ELF loader or the #! program, is missing)", pe)
		}
	}
	return pe
}
