//go:build linux

package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// setMeta sets owner, mode and xattrs through an open descriptor, in the
// order that keeps them: chown clears setuid/setgid bits and
// security.capability, so it comes first. With replace (an existing
// directory), xattrs the entry does not list are removed.
func setMeta(fd int, hdr *tar.Header, replace bool) error {
	if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777)); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	want := xattrsFromPAX(hdr.PAXRecords)
	if replace {
		if err := removeOtherXattrs(fd, want); err != nil {
			return err
		}
	}
	for _, x := range want {
		err := unix.Fsetxattr(fd, x[0], []byte(x[1]), 0)
		if err = tolerateXattr(err, x[0], true); err != nil {
			return fmt.Errorf("set xattr %s: %w", x[0], err)
		}
	}
	return nil
}

// removeOtherXattrs removes the xattrs of fd not in want, except the ones
// a layer never carries (they are not the layer's to remove).
func removeOtherXattrs(fd int, want [][2]string) error {
	buf := make([]byte, 64<<10)
	n, err := unix.Flistxattr(fd, buf)
	if errors.Is(err, unix.ENOTSUP) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list xattrs: %w", err)
	}
	for name := range strings.SplitSeq(string(buf[:n]), "\x00") {
		if name == "" || droppedXattr(name) || slices.ContainsFunc(want, func(x [2]string) bool { return x[0] == name }) {
			continue
		}
		if err := unix.Fremovexattr(fd, name); err != nil && !errors.Is(err, unix.ENODATA) {
			return fmt.Errorf("remove xattr %s: %w", name, err)
		}
	}
	return nil
}

// tolerateXattr drops the errors of xattrs this filesystem or file type
// cannot hold: a filesystem without xattr support (ENOTSUP), and user.*
// xattrs on symlinks and device nodes, which Linux refuses (EPERM).
func tolerateXattr(err error, name string, regularOrDir bool) error {
	switch {
	case err == nil, errors.Is(err, unix.ENOTSUP):
		return nil
	case errors.Is(err, unix.EPERM) && !regularOrDir && strings.HasPrefix(name, "user."):
		return nil
	}
	return err
}

// setTimesAt sets atime and mtime of base in pfd to t, not following a
// final symlink.
func setTimesAt(pfd int, base string, t time.Time) error {
	ts, err := unix.TimeToTimespec(t)
	if err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	if err := unix.UtimesNanoAt(pfd, base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}
