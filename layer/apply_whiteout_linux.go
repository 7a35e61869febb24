//go:build linux

package layer

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// whiteout applies ".wh.<name>" in directory dir.
func (a *applier) whiteout(dir, name string, mtime time.Time) error {
	if a.mode == OverlayWhiteouts {
		pfd, err := a.root.dir(dir, a.madeDir)
		if err != nil {
			return err
		}
		// A 0:0 character device is overlay's whiteout. If the name is
		// taken, this layer created it, and "files that are present in
		// the same layer as a whiteout file can only be hidden by
		// whiteout files in subsequent layers": keep it.
		err = unix.Mknodat(pfd, name, unix.S_IFCHR, 0)
		if errors.Is(err, unix.EEXIST) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("create whiteout: %w", err)
		}
		return setTimesAt(pfd, name, mtime)
	}
	if _, ok := a.unpacked[joinPath(dir, name)]; ok {
		return nil // created by this layer: not the whiteout's to delete
	}
	pfd, err := a.root.dir(dir, nil)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil // nothing there to delete
	}
	if err != nil {
		return err
	}
	a.root.invalidate()
	return removeAllAt(pfd, name)
}

// opaque applies "<dir>/.wh..wh..opq".
func (a *applier) opaque(dir string) error {
	if a.mode == OverlayWhiteouts {
		if _, err := a.root.dir(dir, a.madeDir); err != nil {
			return err
		}
		fd, err := a.root.open(dir, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return fmt.Errorf("open %s: %w", dir, err)
		}
		defer unix.Close(fd)
		if err := unix.Fsetxattr(fd, overlayOpaque, []byte("y"), 0); err != nil {
			return fmt.Errorf("set xattr %s: %w", overlayOpaque, err)
		}
		return nil
	}
	// MergeWhiteouts: hide every lower child, whatever the entry order
	// (image-spec layer.md: the opaque whiteout "is applied first").
	fd, err := a.root.open(dir, unix.O_RDONLY|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	a.root.invalidate()
	return a.clearLower(fd, dir)
}

// clearLower removes from directory fd (layer path rel) everything this
// layer did not create, descending into the directories it did. It closes
// fd.
func (a *applier) clearLower(fd int, rel string) error {
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read dir %s: %w", rel, err)
	}
	for _, n := range names {
		p := joinPath(rel, n)
		if _, ok := a.unpacked[p]; !ok {
			if err := removeAllAt(fd, n); err != nil {
				return err
			}
			continue
		}
		cfd, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			continue
		}
		if err != nil {
			return fmt.Errorf("open %s: %w", p, err)
		}
		if err := a.clearLower(cfd, p); err != nil {
			return err
		}
	}
	return nil
}
