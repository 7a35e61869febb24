package exec

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// mountOpts is a Mount's options split into what mount(2) takes.
type mountOpts struct {
	flags  uintptr  // MS_* flags
	data   []string // filesystem options
	nofail bool
}

// parseOptions splits fstab-style options into mount flags and data.
func parseOptions(opts []string) mountOpts {
	var o mountOpts
	for _, opt := range opts {
		switch opt {
		case "ro":
			o.flags |= unix.MS_RDONLY
		case "rw":
		case "nosuid":
			o.flags |= unix.MS_NOSUID
		case "nodev":
			o.flags |= unix.MS_NODEV
		case "noexec":
			o.flags |= unix.MS_NOEXEC
		case "strictatime":
			o.flags |= unix.MS_STRICTATIME
		case "relatime":
			o.flags |= unix.MS_RELATIME
		case "noatime":
			o.flags |= unix.MS_NOATIME
		case "bind":
			o.flags |= unix.MS_BIND
		case "rbind":
			o.flags |= unix.MS_BIND | unix.MS_REC
		case "nofail":
			o.nofail = true
		default:
			o.data = append(o.data, opt)
		}
	}
	return o
}

// mountAt performs m with its target at the host path target. Errors name
// the sandbox path, which is what a reader of Mounts() knows. Overlay
// layers that hidden names are reached through their descriptors.
func mountAt(m Mount, target string, hidden hiddenPaths) error {
	if m.Type == "overlay" {
		return mountOverlay(m, target, hidden)
	}
	o := parseOptions(m.Options)
	if o.flags&unix.MS_BIND != 0 {
		return bindMount(m.Source, target, m.Target, o)
	}
	if err := unix.Mount(m.Source, target, m.Type, o.flags, strings.Join(o.data, ",")); err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.Type, m.Target, err)
	}
	return nil
}

// bindMount binds source on target (name is the sandbox path, for
// errors), then remounts it with o's flags: mount(2) ignores all but
// MS_REC on the first call. The remount keeps the flags the source mount
// already has (nosuid on the host's /dev, …), which the kernel may refuse
// to clear.
func bindMount(source, target, name string, o mountOpts) error {
	if err := unix.Mount(source, target, "", o.flags&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", source, name, err)
	}
	extra := o.flags &^ (unix.MS_BIND | unix.MS_REC)
	if extra == 0 {
		return nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(target, &st); err != nil {
		return fmt.Errorf("bind %s on %s: %w", source, name, err)
	}
	// The ST_* bits below have the values of the MS_* flags.
	keep := uintptr(st.Flags) & (unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME)
	if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|extra|keep, ""); err != nil {
		return fmt.Errorf("remount %s: %w", name, err)
	}
	return nil
}

// overlayConfig is an overlay Mount's options, sorted out.
type overlayConfig struct {
	lowers      []string
	upper, work string
	other       []string // "key=value" or flag options, in order
	flags       uintptr  // per-mount MS_* flags (ro, nosuid, nodev, noexec)
}

func parseOverlay(opts []string) overlayConfig {
	var c overlayConfig
	for _, opt := range opts {
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "ro", "nosuid", "nodev", "noexec":
			c.flags |= parseOptions([]string{k}).flags
		case "lowerdir+":
			c.lowers = append(c.lowers, v)
		case "upperdir":
			c.upper = v
		case "workdir":
			c.work = v
		default:
			c.other = append(c.other, opt)
		}
	}
	return c
}

// mountOverlay mounts an overlay with the new mount API: one fsconfig call
// per lower ("lowerdir+", Linux ≥ 6.8), so no page-sized option string
// limits the number of layers (overlay's own limit is 500). Kernels
// without fsopen or lowerdir+ get the classic mount(2) string instead.
func mountOverlay(m Mount, target string, hidden hiddenPaths) error {
	c := parseOverlay(m.Options)
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) {
			return mountOverlayClassic(c, target, hidden)
		}
		return fmt.Errorf("mount overlay: fsopen: %w", err)
	}
	defer unix.Close(fd)
	var opened []int // O_PATH fds standing in for long paths
	defer func() {
		for _, f := range opened {
			unix.Close(f)
		}
	}()
	set := func(key, value string) error {
		v, pathFD, err := fsconfigPath(hidden.path(value))
		if err != nil {
			return fmt.Errorf("mount overlay: %s=%s: %w", key, value, err)
		}
		if pathFD >= 0 {
			opened = append(opened, pathFD)
		}
		if err := unix.FsconfigSetString(fd, key, v); err != nil {
			return fmt.Errorf("mount overlay: %s=%s: %w%s", key, value, err, fsLog(fd))
		}
		return nil
	}
	if err := unix.FsconfigSetString(fd, "source", "overlay"); err != nil {
		return fmt.Errorf("mount overlay: source: %w%s", err, fsLog(fd))
	}
	for i, l := range c.lowers {
		err := set("lowerdir+", l)
		if i == 0 && errors.Is(err, unix.EINVAL) {
			// Most likely a kernel before 6.8, which knows no lowerdir+.
			if cerr := mountOverlayClassic(c, target, hidden); cerr != nil {
				return fmt.Errorf("%w (with lowerdir+: %v)", cerr, err)
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
	for _, kv := range [][2]string{{"upperdir", c.upper}, {"workdir", c.work}} {
		if err := set(kv[0], kv[1]); err != nil {
			return err
		}
	}
	for _, opt := range c.other {
		k, v, isKV := strings.Cut(opt, "=")
		if !isKV {
			err = unix.FsconfigSetFlag(fd, k)
		} else {
			err = unix.FsconfigSetString(fd, k, v)
		}
		if err != nil {
			return fmt.Errorf("mount overlay: %s: %w%s", opt, err, fsLog(fd))
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fmt.Errorf("mount overlay: create: %w%s", err, fsLog(fd))
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, mountAttrs(c.flags))
	if err != nil {
		return fmt.Errorf("mount overlay: fsmount: %w%s", err, fsLog(fd))
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount overlay on %s: %w", target, err)
	}
	return nil
}

// mountAttrs converts MS_* flags to fsmount's MOUNT_ATTR_* ones.
func mountAttrs(flags uintptr) int {
	attrs := 0
	for _, f := range [][2]int{
		{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY},
		{unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
		{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV},
		{unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
	} {
		if int(flags)&f[0] != 0 {
			attrs |= f[1]
		}
	}
	return attrs
}

// fsconfigPath returns value unchanged when fsconfig can take it, or a
// /proc/self/fd path to an O_PATH descriptor of it when it is too long:
// fsconfig copies at most 255 bytes of a string, and overlay resolves the
// path (following the magic link) while parsing it.
func fsconfigPath(value string) (string, int, error) {
	if len(value) < 256 {
		return value, -1, nil
	}
	fd, err := unix.Open(value, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", -1, err
	}
	return fmt.Sprintf("/proc/self/fd/%d", fd), fd, nil
}

// fsLog returns the kernel's error messages for an fs context, which name
// the offending option far better than an errno.
func fsLog(fd int) string {
	var msgs []string
	buf := make([]byte, 1024)
	for range 16 {
		n, err := unix.Read(fd, buf)
		if err != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	if len(msgs) == 0 {
		return ""
	}
	return " (" + strings.Join(msgs, "; ") + ")"
}

// mountOverlayClassic mounts with one mount(2) data string, for kernels
// without lowerdir+. The string is limited to a page, which bounds the
// number of layers by their path lengths.
func mountOverlayClassic(c overlayConfig, target string, hidden hiddenPaths) error {
	lowers := make([]string, len(c.lowers))
	for i, l := range c.lowers {
		lowers[i] = hidden.path(l)
	}
	c.lowers, c.upper, c.work = lowers, hidden.path(c.upper), hidden.path(c.work)
	data, err := classicOverlayData(c)
	if err != nil {
		return err
	}
	for _, l := range c.lowers {
		if _, err := os.Stat(l); err != nil {
			return fmt.Errorf("mount overlay: lowerdir %s: %w", l, err)
		}
	}
	if err := unix.Mount("overlay", target, "overlay", c.flags, data); err != nil {
		return fmt.Errorf("mount overlay on %s: %w", target, err)
	}
	return nil
}

// classicOverlayData builds overlay's legacy option string. Overlay splits
// it on unescaped commas and lowerdir on unescaped colons, so both (and
// backslashes) are escaped with a backslash.
func classicOverlayData(c overlayConfig) (string, error) {
	esc := strings.NewReplacer(`\`, `\\`, `:`, `\:`, `,`, `\,`)
	lowers := make([]string, len(c.lowers))
	for i, l := range c.lowers {
		lowers[i] = esc.Replace(l)
	}
	opts := []string{
		"lowerdir=" + strings.Join(lowers, ":"),
		"upperdir=" + esc.Replace(c.upper),
		"workdir=" + esc.Replace(c.work),
	}
	opts = append(opts, c.other...)
	data := strings.Join(opts, ",")
	if len(data) >= os.Getpagesize() {
		return "", fmt.Errorf("mount overlay: %d lower directories do not fit in one mount(2) option string on this kernel (Linux ≥ 6.8 has no such limit)", len(c.lowers))
	}
	return data, nil
}
