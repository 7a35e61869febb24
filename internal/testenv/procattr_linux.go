package testenv

import "syscall"

// serverProcAttr puts a server in its own process group and kills it when
// the thread that started it exits (see startProcess).
func serverProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
