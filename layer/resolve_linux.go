//go:build linux

package layer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// inRoot resolves paths inside a directory as if it were the filesystem
// root, the way a process chrooted there would: ".." stops at the root and
// symlinks, absolute or relative, are followed but stay inside it. It uses
// openat2(2) with RESOLVE_IN_ROOT, so the kernel does the resolution and
// nothing in the tree can redirect it outside.
//
// What it does NOT guarantee: it resolves the *parent* of a name; callers
// act on the final component with *at calls that never follow it
// (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW, unlinkat, mknodat…). It does not defend
// against another process renaming directories inside the root while it
// works (openat2 then fails with EAGAIN, retried a few times, and the
// result is still inside the root), nor against bind mounts placed in the
// root by someone else.
type inRoot struct {
	fd int // O_PATH descriptor of the root

	// The parent directory of the previous entry, which is usually the
	// parent of the next one too. Trusted until something is removed or
	// replaced inside the root (invalidate); the descriptor itself stays
	// open until the next lookup, so the entry being applied can go on
	// using it.
	cachedPath  string
	cachedFD    int
	cachedValid bool
}

// resolveFlags: chroot semantics, and no /proc/self/fd-style jumps.
const resolveFlags = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// openat2 retries EAGAIN this many times (a rename raced the lookup).
const openat2Retries = 64

func openRoot(dir string) (*inRoot, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open root %s: %w", dir, err)
	}
	r := &inRoot{fd: fd, cachedFD: -1}
	// Probe openat2 once, so an old kernel gives one clear error.
	probe, err := r.open(".", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.ENOSYS) {
			return nil, fmt.Errorf("open root %s: openat2 needs Linux 5.6: %w", dir, ErrUnsupported)
		}
		return nil, fmt.Errorf("open root %s: %w", dir, err)
	}
	unix.Close(probe)
	return r, nil
}

func (r *inRoot) close() {
	if r.cachedFD >= 0 {
		unix.Close(r.cachedFD)
	}
	unix.Close(r.fd)
}

// open opens rel (clean, relative; "." is the root) resolved inside the
// root. The caller closes the descriptor.
func (r *inRoot) open(rel string, flags int) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolveFlags}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(r.fd, rel, &how)
		if (errors.Is(err, unix.EAGAIN) && i < openat2Retries) || errors.Is(err, unix.EINTR) {
			continue
		}
		return fd, err
	}
}

// invalidate stops trusting the cached parent. Called whenever something
// inside the root is removed or replaced, since through symlinks that may
// change what any path resolves to.
func (r *inRoot) invalidate() { r.cachedValid = false }

// dir returns an O_PATH descriptor of directory rel resolved in the root.
// It belongs to the cache: the caller must not close it, and it stays open
// until the next call to dir. With made non-nil,
// missing directories are created (mode 0755, owned by the caller) and
// reported to made; otherwise a missing one is an error wrapping ENOENT.
func (r *inRoot) dir(rel string, made func(rel string) error) (int, error) {
	if rel == "." {
		return r.fd, nil
	}
	if r.cachedValid && r.cachedPath == rel {
		return r.cachedFD, nil
	}
	if r.cachedFD >= 0 {
		unix.Close(r.cachedFD)
	}
	r.cachedPath, r.cachedFD, r.cachedValid = "", -1, false
	fd, err := r.open(rel, unix.O_PATH|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) && made != nil {
		fd, err = r.mkdirAll(rel, made)
	}
	if err != nil {
		return -1, fmt.Errorf("resolve %s: %w", rel, err)
	}
	r.cachedPath, r.cachedFD, r.cachedValid = rel, fd, true
	return fd, nil
}

// mkdirAll creates the missing directories of rel one component at a time.
// Each prefix is resolved from the root again, so a symlink met on the way
// is followed exactly as the final lookup would follow it; mkdirat then
// creates the next component inside whatever the prefix resolved to.
func (r *inRoot) mkdirAll(rel string, made func(rel string) error) (int, error) {
	parent := -1 // owned descriptor of the last prefix; -1: the root itself
	fail := func(err error) (int, error) {
		if parent >= 0 {
			unix.Close(parent)
		}
		return -1, err
	}
	prefix := ""
	for comp := range strings.SplitSeq(rel, "/") {
		at := r.fd
		if parent >= 0 {
			at = parent
		}
		next := joinPath(prefix, comp)
		fd, err := r.open(next, unix.O_PATH|unix.O_DIRECTORY)
		if errors.Is(err, unix.ENOENT) {
			switch err := unix.Mkdirat(at, comp, 0o755); {
			case err == nil:
				if err := unix.Fchmodat(at, comp, 0o755, 0); err != nil { // no umask
					return fail(fmt.Errorf("create %s: %w", next, err))
				}
				if err := made(next); err != nil {
					return fail(err)
				}
			case !errors.Is(err, unix.EEXIST): // EEXIST: a dangling symlink, reported below
				return fail(fmt.Errorf("create %s: %w", next, err))
			}
			fd, err = r.open(next, unix.O_PATH|unix.O_DIRECTORY)
		}
		if err != nil {
			return fail(fmt.Errorf("open %s: %w", next, err))
		}
		if parent >= 0 {
			unix.Close(parent)
		}
		parent, prefix = fd, next
	}
	return parent, nil
}

// removeAllAt removes name from the directory dirfd, recursively if it is
// a directory. It never follows symlinks: a symlink is removed, not its
// target. A missing name is not an error.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	// Read the whole listing, remove it, and read again from the start
	// until the directory is empty: removing entries while getdents walks
	// them may skip some on some filesystems.
	for {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("remove %s: %w", name, err)
		}
		names, err := f.Readdirnames(-1)
		if err != nil {
			return fmt.Errorf("remove %s: %w", name, err)
		}
		if len(names) == 0 {
			break
		}
		for _, n := range names {
			if err := removeAllAt(fd, n); err != nil {
				return err
			}
		}
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	return nil
}
