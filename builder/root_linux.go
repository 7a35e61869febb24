package builder

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// dirFD is a directory opened inside a root, used as the dirfd of *at
// system calls so that no path is ever re-resolved from the host root.
//
// What it does not guarantee: a concurrent writer of the same tree can
// still rename entries between calls; every open stays inside the root
// (RESOLVE_IN_ROOT), but the entry opened may not be the one checked.
type dirFD struct {
	fd  int
	rel string // path inside the root, for messages ("" is the root)
}

func (d *dirFD) close() {
	if d != nil && d.fd >= 0 {
		unix.Close(d.fd)
		d.fd = -1
	}
}

// rootFS is a directory treated as a root filesystem: every path is
// resolved inside it as in a chroot, with openat2(RESOLVE_IN_ROOT).
type rootFS struct {
	fd   int
	path string
}

func openRoot(dir string) (*rootFS, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open root %s: %w", dir, err)
	}
	return &rootFS{fd: fd, path: dir}, nil
}

func (r *rootFS) close() { unix.Close(r.fd) }

// openat2 opens rel inside the root; absolute symlinks and ".." stay in it.
func (r *rootFS) openat2(rel string, flags int, resolve uint64) (int, error) {
	if rel == "" {
		rel = "."
	}
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolve | unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	for {
		fd, err := unix.Openat2(r.fd, rel, &how)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue // a concurrent rename; the kernel asks to retry
		}
		return fd, err
	}
}

// openDir opens directory rel, which must contain no symlink (callers pass
// paths from resolve).
func (r *rootFS) openDir(rel string) (*dirFD, error) {
	fd, err := r.openat2(rel, unix.O_RDONLY|unix.O_DIRECTORY, unix.RESOLVE_NO_SYMLINKS)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: "/" + rel, Err: err}
	}
	return &dirFD{fd: fd, rel: rel}, nil
}

// lstat stats rel without following a final symlink.
func (r *rootFS) lstat(rel string) (unix.Stat_t, error) {
	var st unix.Stat_t
	if rel == "" {
		return st, unix.Fstat(r.fd, &st)
	}
	dir, base := path.Split(rel)
	d, err := r.openDir(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return st, err
	}
	defer d.close()
	err = unix.Fstatat(d.fd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	return st, err
}

// resolve returns p (absolute or relative to the root) with every symlink
// of its existing part resolved inside the root, the last component
// included (BuildKit's fs.RootPath, securejoin semantics). Components that
// do not exist are kept as written.
func (r *rootFS) resolve(p string) (string, error) {
	todo := splitPath(p)
	var done []string
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		if c == ".." {
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		cur := path.Join(append(done, c)...)
		st, err := r.lstat(cur)
		if err != nil {
			if isNotExist(err) {
				return cleanRel(path.Join(append(append(done, c), todo...)...)), nil
			}
			return "", err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			done = append(done, c)
			continue
		}
		if links++; links > maxSymlinks {
			return "", &fs.PathError{Op: "resolve", Path: p, Err: unix.ELOOP}
		}
		target, err := r.readlink(cur)
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") {
			done = nil
		}
		todo = append(splitPath(target), todo...)
	}
	return path.Join(done...), nil
}

// cleanRel cleans a relative path, dropping ".." that would climb above
// the root.
func cleanRel(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

func (r *rootFS) readlink(rel string) (string, error) {
	dir, base := path.Split(rel)
	d, err := r.openDir(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return "", err
	}
	defer d.close()
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(d.fd, base, buf)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: "/" + rel, Err: err}
	}
	return string(buf[:n]), nil
}

// mkdirAll creates rel (already resolved) and its missing parents with
// perm and owner, like BuildKit's copy.MkdirAll: existing directories are
// left alone, a non-directory in the way is ENOTDIR. It returns the
// directory, opened.
func (r *rootFS) mkdirAll(rel string, perm uint32, owner Owner) (*dirFD, error) {
	d, err := r.openDir("")
	if err != nil {
		return nil, err
	}
	for _, c := range splitPath(rel) {
		next, err := d.mkdirOpen(c, perm, owner)
		d.close()
		if err != nil {
			return nil, err
		}
		d = next
	}
	return d, nil
}

// mkdirOpen opens directory name in d, creating it with perm and owner if
// it is missing. A symlink or file in the way is ENOTDIR.
func (d *dirFD) mkdirOpen(name string, perm uint32, owner Owner) (*dirFD, error) {
	rel := path.Join(d.rel, name)
	err := unix.Mkdirat(d.fd, name, perm)
	created := err == nil
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, &fs.PathError{Op: "mkdir", Path: "/" + rel, Err: err}
	}
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			err = unix.ENOTDIR
		}
		return nil, &fs.PathError{Op: "mkdir", Path: "/" + rel, Err: err}
	}
	n := &dirFD{fd: fd, rel: rel}
	if created {
		// mkdirat honours the umask; set the mode explicitly.
		if err := unix.Fchown(fd, owner.UID, owner.GID); err != nil {
			n.close()
			return nil, &fs.PathError{Op: "chown", Path: "/" + rel, Err: err}
		}
		if err := unix.Fchmod(fd, perm); err != nil {
			n.close()
			return nil, &fs.PathError{Op: "chmod", Path: "/" + rel, Err: err}
		}
	}
	return n, nil
}

// open opens the file rel inside the root for reading (no symlink may be
// in rel: callers pass resolved paths).
func (r *rootFS) open(rel string) (int, error) {
	fd, err := r.openat2(rel, unix.O_RDONLY|unix.O_NOFOLLOW, unix.RESOLVE_NO_SYMLINKS)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: "/" + rel, Err: err}
	}
	return fd, nil
}
