//go:build linux

package layer

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// xattrBuf is a reusable buffer for the l*xattr calls of one walk.
type xattrBuf struct{ b []byte }

// list returns the names of path's xattrs, not following a final symlink,
// sorted.
func (xb *xattrBuf) list(path string) ([]string, error) {
	return xb.listWith(func(b []byte) (int, error) { return unix.Llistxattr(path, b) })
}

// listFD is list for an open file.
func (xb *xattrBuf) listFD(fd int) ([]string, error) {
	return xb.listWith(func(b []byte) (int, error) { return unix.Flistxattr(fd, b) })
}

func (xb *xattrBuf) listWith(call func([]byte) (int, error)) ([]string, error) {
	for {
		if len(xb.b) == 0 {
			xb.b = make([]byte, 4096)
		}
		n, err := call(xb.b)
		if errors.Is(err, unix.ERANGE) {
			xb.b = make([]byte, 2*len(xb.b))
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list xattrs: %w", err)
		}
		var names []string
		for b := range bytes.SplitSeq(xb.b[:n], []byte{0}) {
			if len(b) > 0 {
				names = append(names, string(b))
			}
		}
		slices.Sort(names)
		return names, nil
	}
}

// get returns the value of xattr name of path, not following a final
// symlink.
func (xb *xattrBuf) get(path, name string) (string, error) {
	return xb.getWith(name, func(b []byte) (int, error) { return unix.Lgetxattr(path, name, b) })
}

// getFD is get for an open file.
func (xb *xattrBuf) getFD(fd int, name string) (string, error) {
	return xb.getWith(name, func(b []byte) (int, error) { return unix.Fgetxattr(fd, name, b) })
}

func (xb *xattrBuf) getWith(name string, call func([]byte) (int, error)) (string, error) {
	for {
		if len(xb.b) == 0 {
			xb.b = make([]byte, 4096)
		}
		n, err := call(xb.b)
		if errors.Is(err, unix.ERANGE) {
			xb.b = make([]byte, 2*len(xb.b))
			continue
		}
		if err != nil {
			return "", fmt.Errorf("get xattr %s: %w", name, err)
		}
		return string(xb.b[:n]), nil
	}
}

// removeXattr removes xattr name from path. A missing attribute is not an
// error; security.selinux is removed on a best-effort basis only (a host
// with an active policy may refuse, and relabels whatever Apply writes
// anyway).
func removeXattr(path, name string) error {
	err := unix.Lremovexattr(path, name)
	if err == nil || errors.Is(err, unix.ENODATA) || name == xattrSELinux {
		return nil
	}
	return fmt.Errorf("remove xattr %s: %w", name, err)
}

// xattrsFromPAX returns the xattrs a tar header asks for, without the ones
// a layer must not carry (see droppedXattr), sorted by name.
func xattrsFromPAX(recs map[string]string) [][2]string {
	var out [][2]string
	for k, v := range recs {
		name, ok := strings.CutPrefix(k, paxXattrPrefix)
		if !ok || name == "" || droppedXattr(name) {
			continue
		}
		out = append(out, [2]string{name, v})
	}
	slices.SortFunc(out, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	return out
}
