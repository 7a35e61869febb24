//go:build linux && (arm64 || riscv64 || loong64 || mips64 || mips64le)

package cache

import "syscall"

// lstatAt is fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW).
func lstatAt(dirfd int, name string, st *syscall.Stat_t) error {
	for {
		err := syscall.Fstatat(dirfd, name, st, atSymlinkNofollow)
		if err != syscall.EINTR {
			return err
		}
	}
}

// lstatAtPtr is lstatAt with a NUL-terminated name.
func lstatAtPtr(dirfd int, name *byte, st *syscall.Stat_t) error {
	return lstatAt(dirfd, cString(name), st)
}
