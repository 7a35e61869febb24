//go:build linux

package oci

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// lockMode is how a file lock is held.
type lockMode int

const (
	lockShared lockMode = iota
	lockExclusive
)

// tryLock takes an flock(2) on f without blocking and reports whether it got
// it. flock locks belong to the open file description: two opens of one
// file conflict even inside one process, which is what per-process tmp dirs
// and ingest files rely on.
func tryLock(f *os.File, mode lockMode) (bool, error) {
	how := unix.LOCK_SH
	if mode == lockExclusive {
		how = unix.LOCK_EX
	}
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EWOULDBLOCK):
			return false, nil
		default:
			return false, fmt.Errorf("flock %s: %w", f.Name(), err)
		}
	}
}

// unlock drops the flock on f; the file stays open.
func unlock(f *os.File) error {
	if err := unix.Flock(int(f.Fd()), unix.LOCK_UN); err != nil {
		return fmt.Errorf("unlock %s: %w", f.Name(), err)
	}
	return nil
}

// syncFS flushes the whole filesystem holding dir (syncfs(2)): one call
// makes every file of a freshly written tree durable, which is cheaper than
// an fsync per file for snapshots of thousands of entries.
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}

// renameNoReplace renames oldpath to newpath and fails with an error
// wrapping fs.ErrExist if newpath exists (plain rename(2) would silently
// replace an empty directory).
func renameNoReplace(oldpath, newpath string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: fs.ErrExist}
	}
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// Filesystems without RENAME_NOREPLACE: check, then rename. The
		// window only matters for two writers of the same content.
		if _, serr := os.Lstat(newpath); serr == nil {
			return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: fs.ErrExist}
		}
		return os.Rename(oldpath, newpath)
	}
	return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
}
