package exec

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// maxUserDB bounds how much of /etc/passwd or /etc/group is read.
const maxUserDB = 16 << 20

// LookupUser resolves user ("", "name", "uid", "name:group", "uid:gid")
// in the root filesystem at root, reading its /etc/passwd and /etc/group
// as if root were "/": symlinks and ".." in the image cannot lead outside
// it. A name that is not found wraps [ErrUnknownUser]; a numeric id need
// not be listed. The rules are runc's, which Docker and BuildKit use:
// supplementary groups come from /etc/group membership only when no group
// is given explicitly.
//
// LookupUser does not guarantee that the result is the same as what libc
// inside the image would return with NSS modules (LDAP, systemd-userdb):
// only the two files count, as in Docker.
func LookupUser(root, user string) (User, error) {
	passwd, err := readInRoot(root, "/etc/passwd")
	if err != nil {
		return User{}, err
	}
	group, err := readInRoot(root, "/etc/group")
	if err != nil {
		return User{}, err
	}
	return resolveUser(user, passwd, group)
}

// readInRoot returns the contents of the regular file name resolved inside
// root, or nil when it does not exist. A non-regular file (a FIFO or device
// planted as /etc/passwd) is an error rather than a hang or an endless read.
func readInRoot(root, name string) ([]byte, error) {
	f, err := openInRoot(root, name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s in %s: not a regular file", name, root)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxUserDB+1))
	if err != nil {
		return nil, fmt.Errorf("read %s in %s: %w", name, root, err)
	}
	if len(data) > maxUserDB {
		return nil, fmt.Errorf("read %s in %s: larger than %d bytes", name, root, maxUserDB)
	}
	return data, nil
}

// openInRoot opens name as if root were "/" (openat2 RESOLVE_IN_ROOT, so
// absolute symlinks and ".." stay inside root). It does not guarantee
// anything about the file once open: the caller checks its type.
func openInRoot(root, name string, flags int) (*os.File, error) {
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(dir)
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for range 64 {
		fd, err := unix.Openat2(dir, name, &how)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue // a concurrent rename in root; the kernel asks to retry
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: name + " in " + root, Err: err}
		}
		return os.NewFile(uintptr(fd), name), nil
	}
	return nil, &os.PathError{Op: "open", Path: name + " in " + root, Err: unix.EAGAIN}
}
