package cache

import (
	"errors"
	"strings"
	"syscall"
	"unsafe"
)

// atSymlinkNofollow is AT_SYMLINK_NOFOLLOW (the same on every Linux arch;
// the syscall package does not export it).
const atSymlinkNofollow = 0x100

// openFlags open a context entry without following a final symlink.
const (
	openDirFlags  = syscall.O_RDONLY | syscall.O_DIRECTORY | syscall.O_NOFOLLOW | syscall.O_CLOEXEC
	openFileFlags = syscall.O_RDONLY | syscall.O_NOFOLLOW | syscall.O_CLOEXEC | syscall.O_NONBLOCK
)

// openAt is openat(2) retried on EINTR.
func openAt(dirfd int, name string, flags int) (int, error) {
	for {
		fd, err := syscall.Openat(dirfd, name, flags, 0)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}

// readlinkAt reads the target of the symlink name in dirfd.
func readlinkAt(dirfd int, name string) (string, error) {
	p, err := syscall.BytePtrFromString(name)
	if err != nil {
		return "", err
	}
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, _, errno := syscall.Syscall6(syscall.SYS_READLINKAT, uintptr(dirfd),
			uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(&buf[0])), uintptr(size), 0, 0)
		if errno != 0 {
			return "", errno
		}
		if int(n) < size {
			return string(buf[:n]), nil
		}
	}
}

// fxattrs returns the keyed extended attributes of an open file: all but
// the host-only ones a layer drops (see [keyedXattr]). A filesystem
// without xattr support has none.
func fxattrs(fd int) (map[string]string, error) {
	var small [512]byte
	list := small[:]
	for {
		n, err := fxattrCall(syscall.SYS_FLISTXATTR, fd, nil, list)
		if err == syscall.ERANGE {
			size, err := fxattrCall(syscall.SYS_FLISTXATTR, fd, nil, nil)
			if err != nil {
				return nil, err
			}
			list = make([]byte, size+64)
			continue
		}
		if err == syscall.ENOTSUP || err == syscall.EOPNOTSUPP {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		list = list[:n]
		break
	}
	var out map[string]string
	for _, name := range strings.Split(strings.TrimSuffix(string(list), "\x00"), "\x00") {
		if name == "" || !keyedXattr(name) {
			continue
		}
		v, err := fgetxattr(fd, name)
		if errors.Is(err, syscall.ENODATA) {
			continue // removed since listing
		}
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = v
	}
	return out, nil
}

func fgetxattr(fd int, name string) (string, error) {
	p, err := syscall.BytePtrFromString(name)
	if err != nil {
		return "", err
	}
	buf := make([]byte, 256)
	for {
		n, err := fxattrCall(syscall.SYS_FGETXATTR, fd, p, buf)
		if err == syscall.ERANGE {
			size, err := fxattrCall(syscall.SYS_FGETXATTR, fd, p, nil)
			if err != nil {
				return "", err
			}
			buf = make([]byte, size+64)
			continue
		}
		if err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
}

// fxattrCall is flistxattr(fd, buf) (name == nil) or fgetxattr(fd, name,
// buf); a nil buf asks for the size.
func fxattrCall(trap uintptr, fd int, name *byte, buf []byte) (int, error) {
	var bp unsafe.Pointer
	if len(buf) > 0 {
		bp = unsafe.Pointer(&buf[0])
	}
	var r uintptr
	var errno syscall.Errno
	for {
		if name == nil {
			r, _, errno = syscall.Syscall(trap, uintptr(fd), uintptr(bp), uintptr(len(buf)))
		} else {
			r, _, errno = syscall.Syscall6(trap, uintptr(fd), uintptr(unsafe.Pointer(name)), uintptr(bp), uintptr(len(buf)), 0, 0)
		}
		if errno != syscall.EINTR {
			break
		}
	}
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// statOf converts the kernel's stat to the stat cache's form.
func statOf(st *syscall.Stat_t) Stat {
	return Stat{
		Dev:   uint64(st.Dev),
		Ino:   uint64(st.Ino),
		Mode:  uint32(st.Mode),
		Size:  int64(st.Size),
		Mtime: int64(st.Mtim.Sec)*1e9 + int64(st.Mtim.Nsec),
		Ctime: int64(st.Ctim.Sec)*1e9 + int64(st.Ctim.Nsec),
	}
}

// fileType maps st_mode to a listing type; "" for sockets and unknowns.
func fileType(mode uint32) FileType {
	switch mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		return TypeFile
	case syscall.S_IFDIR:
		return TypeDir
	case syscall.S_IFLNK:
		return TypeSymlink
	case syscall.S_IFIFO:
		return TypeFifo
	case syscall.S_IFCHR:
		return TypeChar
	case syscall.S_IFBLK:
		return TypeBlock
	}
	return ""
}

// cString copies a NUL-terminated string.
func cString(p *byte) string {
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}
