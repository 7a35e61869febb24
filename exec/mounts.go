package exec

import (
	"path/filepath"
	"strings"
)

// Mounts returns every mount the sandbox of s will make, in order, before
// anything is mounted: the root ([RootSpec.Mount]), then the kernel
// filesystems and files a process expects, modelled on Docker's defaults
// (moby oci/defaults.go and runc's default devices):
//
//   - /proc, a new instance for the sandbox's PID namespace, with Docker's
//     masked paths (/proc/kcore, /proc/keys, … hidden) and read-only paths
//     (/proc/sys, /proc/sysrq-trigger, …), since real root in the sandbox
//     could otherwise reboot or reconfigure the host through them;
//   - /dev, a small nodev tmpfs holding null, zero, full, random, urandom
//     and tty bound from the host (see [RootSpec.Mount] for why nodev), devpts at /dev/pts (its own instance, with
//     /dev/ptmx pointing into it), tmpfs /dev/shm and mqueue /dev/mqueue;
//     the symlinks /dev/fd, /dev/stdin, /dev/stdout, /dev/stderr and
//     /dev/ptmx are created in that tmpfs and are not listed;
//   - /sys, read-only, with /sys/firmware masked;
//   - /etc/resolv.conf bound read-only from the host; /etc/hosts (the
//     host's lines plus the sandbox's host name) and /etc/hostname
//     generated in Work and bound read-only, as Docker manages all three.
//
// None of these paths is ever part of the layer. The sandbox's init
// mounts a tmpfs over Work, in its own mount namespace, and generates
// /etc/hosts and /etc/hostname there; the root is mounted on <Work>/root
// in it. The mountpoints the image lacks come from a stub layer below the
// image's layers ([RootSpec.Mount] plus "lowerdir+=<Work>/stubs"), empty
// directories and files in that tmpfs, so nothing of this touches the
// disk. A mountpoint that the stub layer cannot provide (the image deleted
// the path, there is no lower layer, or the layers' filesystem is not one
// where the stub layer is invisible, see withStubLayer) is created in the
// upper directory for the run and removed afterwards.
func (s Spec) Mounts() []Mount {
	merged := s.Root.merged()
	root := s.Root.Mount()
	if root.Type == "overlay" && stubLayerFits(s.Root.Upper) {
		root.Options = withStubLayer(root.Options, s.Root.stubsDir())
	}
	ms := []Mount{
		root,
		{Type: "proc", Source: "proc", Target: "/proc", Options: []string{"nosuid", "nodev", "noexec"}},
	}
	for _, p := range maskedPaths() {
		ms = append(ms, mask(p))
	}
	for _, p := range readonlyPaths() {
		ms = append(ms, Mount{Type: "bind", Source: filepath.Join(merged, p), Target: p, Options: []string{"bind", "ro", "nosuid", "nodev", "noexec", "nofail"}})
	}
	ms = append(ms, Mount{Type: "tmpfs", Source: "tmpfs", Target: "/dev", Options: []string{"nosuid", "nodev", "strictatime", "mode=755", "size=65536k"}})
	for _, d := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		// A plain bind: the node's own mount flags are the host's, and a
		// remount per device would cost more than nosuid buys on a node.
		ms = append(ms, Mount{Type: "bind", Source: "/dev/" + d, Target: "/dev/" + d, Options: []string{"bind"}})
	}
	ms = append(ms,
		Mount{Type: "devpts", Source: "devpts", Target: "/dev/pts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		Mount{Type: "tmpfs", Source: "shm", Target: "/dev/shm", Options: []string{"nosuid", "nodev", "noexec", "mode=1777", "size=65536k"}},
		Mount{Type: "mqueue", Source: "mqueue", Target: "/dev/mqueue", Options: []string{"nosuid", "nodev", "noexec"}},
		Mount{Type: "sysfs", Source: "sysfs", Target: "/sys", Options: []string{"ro", "nosuid", "nodev", "noexec"}},
		mask("/sys/firmware/"),
		mask("/sys/devices/virtual/powercap/"),
		Mount{Type: "bind", Source: "/etc/resolv.conf", Target: "/etc/resolv.conf", Options: []string{"bind", "ro", "nosuid", "nodev", "noexec", "nofail"}},
		Mount{Type: "bind", Source: s.Root.hostsFile(), Target: "/etc/hosts", Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"}},
		Mount{Type: "bind", Source: s.Root.hostnameFile(), Target: "/etc/hostname", Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"}},
	)
	return ms
}

// maskedPaths are Docker's masked /proc paths (moby oci.DefaultSpec). A
// trailing slash marks a directory, masked by an empty read-only tmpfs;
// files are masked by /dev/null.
func maskedPaths() []string {
	return []string{
		"/proc/asound/", "/proc/acpi/", "/proc/interrupts", "/proc/kcore",
		"/proc/keys", "/proc/latency_stats", "/proc/timer_list",
		"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi/",
	}
}

// readonlyPaths are Docker's read-only /proc paths.
func readonlyPaths() []string {
	return []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
}

func mask(p string) Mount {
	if p[len(p)-1] == '/' {
		return Mount{Type: "tmpfs", Source: "tmpfs", Target: p[:len(p)-1], Options: []string{"ro", "nosuid", "nodev", "noexec", "nofail"}}
	}
	// Not nodev: the mask must open as /dev/null does.
	return Mount{Type: "bind", Source: "/dev/null", Target: p, Options: []string{"bind", "ro", "nosuid", "noexec", "nofail"}}
}

// withStubLayer adds the stub layer below the image's layers. Where the
// image has no such path, overlay shows the stub, so the mountpoint exists
// without anything being created in the upper directory; where the image
// has it, the image's entry wins, with its own mode and owner. A path
// that a layer deleted (a whiteout) or that an opaque directory hides
// stays hidden, and the init falls back to creating it in the upper
// directory (see mountpoints).
//
// The stub layer is on a tmpfs, the image's layers are not: "xino=auto"
// keeps st_dev and st_ino what they are without the stub layer, overlay's
// own st_dev for every object and the real st_ino, with high bits set for
// the stub layer's objects only. It can do so on filesystems whose inode
// numbers leave the high bits free, which stubLayerFits checks; elsewhere
// (XFS, btrfs) files would report the st_dev of the filesystem that holds
// them, so the init creates stubs in the upper directory instead.
func withStubLayer(opts []string, stubs string) []string {
	last := -1
	for i, o := range opts {
		if strings.HasPrefix(o, "lowerdir+=") {
			last = i
		}
	}
	out := make([]string, 0, len(opts)+2)
	out = append(out, opts[:last+1]...)
	out = append(out, "lowerdir+="+stubs)
	out = append(out, opts[last+1:]...)
	return append(out, "xino=auto")
}
