//go:build linux && !(amd64 || arm64 || riscv64 || loong64 || mips64 || mips64le)

package cache

import (
	"strconv"
	"syscall"
)

// lstatAt stats name in dirfd without following a final symlink, through
// /proc/self/fd on architectures where the syscall package has no fstatat.
func lstatAt(dirfd int, name string, st *syscall.Stat_t) error {
	return syscall.Lstat("/proc/self/fd/"+strconv.Itoa(dirfd)+"/"+name, st)
}

// lstatAtPtr is lstatAt with a NUL-terminated name.
func lstatAtPtr(dirfd int, name *byte, st *syscall.Stat_t) error {
	return lstatAt(dirfd, cString(name), st)
}
