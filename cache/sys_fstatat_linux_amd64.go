package cache

import (
	"syscall"
	"unsafe"
)

// lstatAt is fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW); amd64 names
// it newfstatat and the syscall package does not export it.
func lstatAt(dirfd int, name string, st *syscall.Stat_t) error {
	p, err := syscall.BytePtrFromString(name)
	if err != nil {
		return err
	}
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_NEWFSTATAT, uintptr(dirfd),
			uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(st)), atSymlinkNofollow, 0, 0)
		switch errno {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		}
		return errno
	}
}

// lstatAtPtr is lstatAt with the name already NUL-terminated (a slice of
// a getdents buffer), which spares an allocation per file.
func lstatAtPtr(dirfd int, name *byte, st *syscall.Stat_t) error {
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_NEWFSTATAT, uintptr(dirfd),
			uintptr(unsafe.Pointer(name)), uintptr(unsafe.Pointer(st)), atSymlinkNofollow, 0, 0)
		switch errno {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		}
		return errno
	}
}
