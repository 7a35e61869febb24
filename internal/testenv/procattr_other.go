//go:build !linux

package testenv

import "syscall"

// serverProcAttr puts a server in its own process group; only Linux has a
// parent-death signal.
func serverProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
