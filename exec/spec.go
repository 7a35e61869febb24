package exec

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Network selects the network namespace of a sandbox.
type Network string

// The network modes. The zero value is [NetworkHost].
const (
	// NetworkHost shares the host's network namespace, like Docker's
	// default for build steps reaching package mirrors.
	NetworkHost Network = "host"
	// NetworkNone gives the sandbox its own network namespace holding only
	// a loopback interface, which is up.
	NetworkNone Network = "none"
)

// DefaultHostname is the host name of a sandbox whose [Spec.Hostname] is
// empty. It is fixed so that a step sees the same value on every machine.
const DefaultHostname = "minibuild"

// DefaultPath is the PATH a process gets when [Spec.Env] sets none. It is
// Docker's default.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ErrUnsupported is returned on systems without Linux namespaces and
// overlayfs.
var ErrUnsupported = errors.New("sandbox not supported on this system")

// ErrUnknownUser is returned, wrapped, when a user or group name is not in
// the image's /etc/passwd or /etc/group.
var ErrUnknownUser = errors.New("unknown user or group")

// RootSpec describes the root filesystem of a sandbox as an overlay mount.
//
// Lower are the read-only layers, topmost first (Lower[0] shadows
// Lower[1]); they may be empty (FROM scratch), in which case Upper itself
// becomes the root. Upper receives every change and is the step's layer.
// Work is scratch space that the mount owns while it exists: it is
// overlay's work directory and holds the mount point (a RUN sandbox keeps
// that and its generated files in a tmpfs over Work, see
// [Spec.Mounts]); it must be on the same filesystem as Upper, must not be
// used by two mounts at once, and is emptied before and after each use. Upper
// and Work are created if missing.
//
// Because overlay shows the upper directory's own mode and owner as "/",
// [Run] and [WithRoot] give Upper the mode and owner of Lower[0] first.
type RootSpec struct {
	Lower []string
	Upper string
	Work  string
}

// Spec is one process to run in a sandbox. The zero value of every field
// but Args and Root is valid.
type Spec struct {
	// Args is the command and its arguments. A command without a slash is
	// looked up in the sandbox's PATH.
	Args []string
	// Env is the environment, KEY=value. PATH defaults to [DefaultPath]
	// and HOME to the user's home directory ("/" without one).
	Env []string
	// Cwd is the working directory inside the sandbox, "/" when empty.
	// It is created (owned by root, mode 0755) when missing, as BuildKit
	// does, so a missing directory shows up in the layer.
	Cwd string
	// User is "", "name", "uid", "name:group" or "uid:gid", resolved in
	// the image's /etc/passwd and /etc/group (see [LookupUser]).
	User string
	// Hostname is the sandbox's host name, [DefaultHostname] when empty.
	// It is also in /etc/hostname and /etc/hosts.
	Hostname string
	// Root is the sandbox's root filesystem.
	Root RootSpec
	// Network is the network mode; "" means [NetworkHost].
	Network Network
	// Stdout and Stderr receive the process's output; nil discards it.
	// Stdin is always /dev/null: a sandbox never needs a terminal.
	Stdout, Stderr io.Writer
}

// Mount is one mount of a sandbox, as data. Target is a path inside the
// sandbox. Source of a bind mount is a host path, as seen before the
// sandbox pivots into its root (so a read-only re-bind of a path inside the
// sandbox names it below the mount point in Work). Options are fstab-style:
// mount flags ("ro", "nosuid", "bind", …), filesystem data ("mode=755",
// "lowerdir+=/x") and "nofail", which skips the mount when its source or
// its target inside /proc or /sys does not exist.
type Mount struct {
	Type    string
	Source  string
	Target  string
	Options []string
}

// String formats m like a line of mount(8)'s output.
func (m Mount) String() string {
	return fmt.Sprintf("%s on %s type %s (%s)", m.Source, m.Target, m.Type, strings.Join(m.Options, ","))
}

// ExitError reports a process that ended with a non-zero status.
type ExitError struct {
	// Code is the exit status, or 128+signal when Signal is set, as a
	// shell reports it.
	Code int
	// Signal is the signal that killed the process, or 0.
	Signal syscall.Signal
}

func (e *ExitError) Error() string {
	if e.Signal != 0 {
		return fmt.Sprintf("killed by signal %d (%v)", int(e.Signal), e.Signal)
	}
	return fmt.Sprintf("exit code %d", e.Code)
}

// User is a resolved user: the credentials a sandboxed process gets.
type User struct {
	UID, GID uint32
	// Groups are the supplementary groups.
	Groups []uint32
	// Home is the home directory, "/" when passwd has none.
	Home string
}

// initArg is the hidden first argument that makes the minibuild binary run
// as a sandbox init (see [IsInit]). It is an argument, never an
// environment variable, so that nothing a user sets can trigger it.
const initArg = "__minibuild-init"

// IsInit reports whether this process was started by [Run] as a sandbox
// init. main calls it first and then [Init].
func IsInit() bool {
	return len(os.Args) > 1 && os.Args[1] == initArg
}

// Layout of Work. Work itself is overlay's work directory (overlay makes
// "work" in it), and the root is mounted on "root" in it. A RUN sandbox's
// init covers Work, in its own mount namespace, with a tmpfs holding the
// mount point, the generated files and the stub layer (scratch_linux.go);
// in-process steps create the mount point on the disk. Each name is a
// direct child so that emptying Work removes everything a mount left.
func (r RootSpec) merged() string       { return filepath.Join(r.Work, "root") }
func (r RootSpec) hostsFile() string    { return filepath.Join(r.Work, "hosts") }
func (r RootSpec) hostnameFile() string { return filepath.Join(r.Work, "hostname") }
func (r RootSpec) stubsDir() string     { return filepath.Join(r.Work, "stubs") }

// Mount returns the mount of the root filesystem, Target "/": an overlay,
// or a bind mount of Upper when there is no lower layer.
//
// The overlay options follow the layer format's needs (docs/architecture.md
// §5): redirect_dir, metacopy and index off keep the upperdir a complete,
// portable diff; volatile skips the syncfs at unmount because the store
// fsyncs what it keeps. Each lower is its own "lowerdir+" so no string
// length limits the depth (Linux ≥ 6.8; older kernels get the classic
// colon list, see mountOverlay).
//
// The root is nodev, as is the sandbox's /dev tmpfs: a step has
// CAP_MKNOD (Docker's default set) but no device cgroup, so a node it
// makes, say for the host's disk, must not open. The devices a process
// needs are bind mounts of the host's, which keep their own flags.
func (r RootSpec) Mount() Mount {
	if len(r.Lower) == 0 {
		return Mount{Type: "bind", Source: r.Upper, Target: "/", Options: []string{"bind", "nodev"}}
	}
	opts := make([]string, 0, len(r.Lower)+7)
	for _, l := range r.Lower {
		opts = append(opts, "lowerdir+="+l)
	}
	opts = append(opts,
		"upperdir="+r.Upper,
		"workdir="+r.Work,
		"redirect_dir=off",
		"metacopy=off",
		"index=off",
		"volatile",
		"nodev",
	)
	return Mount{Type: "overlay", Source: "overlay", Target: "/", Options: opts}
}

func (r RootSpec) validate() error {
	for _, p := range []struct{ name, path string }{{"upper", r.Upper}, {"work", r.Work}} {
		if !filepath.IsAbs(p.path) {
			return fmt.Errorf("%s dir %q: not an absolute path", p.name, p.path)
		}
	}
	for _, l := range r.Lower {
		if !filepath.IsAbs(l) {
			return fmt.Errorf("lowerdir %q: not an absolute path", l)
		}
	}
	return nil
}

func (s Spec) validate() error {
	if len(s.Args) == 0 || s.Args[0] == "" {
		return errors.New("empty command")
	}
	if s.Cwd != "" && !filepath.IsAbs(s.Cwd) {
		return fmt.Errorf("working directory %q: not an absolute path", s.Cwd)
	}
	switch s.Network {
	case "", NetworkHost, NetworkNone:
	default:
		return fmt.Errorf("network %q: unknown mode (want host or none)", s.Network)
	}
	if h := s.hostname(); len(h) > 64 || strings.ContainsAny(h, "\x00\n/ ") {
		return fmt.Errorf("hostname %q: invalid (at most 64 bytes, no spaces or slashes)", s.Hostname)
	}
	return s.Root.validate()
}

func (s Spec) hostname() string {
	if s.Hostname == "" {
		return DefaultHostname
	}
	return s.Hostname
}
