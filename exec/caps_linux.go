package exec

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// dockerCaps is Docker's default capability set (moby
// oci/caps/defaults.go), 0x00000000a80425fb as /proc/PID/status shows it.
const dockerCaps uint64 = 1<<unix.CAP_CHOWN |
	1<<unix.CAP_DAC_OVERRIDE |
	1<<unix.CAP_FSETID |
	1<<unix.CAP_FOWNER |
	1<<unix.CAP_MKNOD |
	1<<unix.CAP_NET_RAW |
	1<<unix.CAP_SETGID |
	1<<unix.CAP_SETUID |
	1<<unix.CAP_SETFCAP |
	1<<unix.CAP_SETPCAP |
	1<<unix.CAP_NET_BIND_SERVICE |
	1<<unix.CAP_SYS_CHROOT |
	1<<unix.CAP_KILL |
	1<<unix.CAP_AUDIT_WRITE

// limitCapabilities reduces the calling thread to Docker's default set:
// bounding, effective and permitted; inheritable and ambient empty, as
// Docker does since the fix for CVE-2022-24769 (a non-empty inheritable
// set let file capabilities of a binary grant more than the bounding set
// intends to non-root users).
//
// Capabilities belong to a thread, not a process: the caller must hold
// its OS thread (runtime.LockOSThread) until it execs from it. With a
// non-root user, setresuid later clears effective and permitted, so such a
// process runs without capabilities, as in Docker.
func limitCapabilities() error {
	for c := 0; c < 64; c++ {
		if dockerCaps&(1<<c) != 0 {
			continue
		}
		err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0)
		if err == unix.EINVAL {
			break // past the kernel's last capability
		}
		if err != nil {
			return fmt.Errorf("drop capability %d from bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(dockerCaps), Permitted: uint32(dockerCaps)},
		{Effective: uint32(dockerCaps >> 32), Permitted: uint32(dockerCaps >> 32)},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("set capabilities: %w", err)
	}
	return nil
}
