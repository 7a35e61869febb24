package exec

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"
)

// The init's scratch space.
//
// Everything the init makes besides the mounts lives in a tmpfs that it
// mounts over Work in its own mount namespace: the root's mount point,
// the generated /etc/hosts and /etc/hostname, and the stub layer (see
// withStubLayer). None of it touches the disk, where creating a file or a
// directory costs far more than on a tmpfs, and all of it goes away with
// the namespace, with nothing to remove afterwards.

// hiddenPaths are directories that the scratch tmpfs hides, opened before
// it was mounted: overlay's work directory is Work itself, on the disk.
type hiddenPaths map[string]int

// path returns p, or a path that reaches the directory p named before
// the tmpfs hid it.
func (h hiddenPaths) path(p string) string {
	if fd, ok := h[p]; ok {
		return fmt.Sprintf("/proc/self/fd/%d", fd)
	}
	return p
}

func (h hiddenPaths) close() {
	for _, fd := range h {
		unix.Close(fd)
	}
}

// prepareScratch mounts the scratch tmpfs on cfg.Work and fills it. It
// returns Work as it was underneath, for the root mount; the caller
// closes it.
func prepareScratch(cfg initConfig) (hiddenPaths, error) {
	fd, err := unix.Open(cfg.Work, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open work directory: %w", err)
	}
	hidden := hiddenPaths{cfg.Work: fd}
	err = unix.Mount("tmpfs", cfg.Work, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0700")
	if err != nil {
		err = fmt.Errorf("mount scratch tmpfs: %w", err)
	} else {
		err = fillScratch(cfg)
	}
	if err != nil {
		hidden.close()
		return nil, err
	}
	return hidden, nil
}

func fillScratch(cfg initConfig) error {
	r := RootSpec{Work: cfg.Work}
	if err := os.Mkdir(cfg.Merged, 0o755); err != nil {
		return fmt.Errorf("root mount point: %w", err)
	}
	if err := os.WriteFile(r.hostsFile(), hostsFile(cfg.Hostname), 0o644); err != nil {
		return fmt.Errorf("write /etc/hosts: %w", err)
	}
	if err := os.WriteFile(r.hostnameFile(), []byte(cfg.Hostname+"\n"), 0o644); err != nil {
		return fmt.Errorf("write /etc/hostname: %w", err)
	}
	if slices.Contains(cfg.Mounts[0].Options, "lowerdir+="+r.stubsDir()) {
		return makeStubLayer(r.stubsDir(), cfg.Mounts)
	}
	return nil
}

// hostsFile returns the sandbox's /etc/hosts: the host's, for names a
// host network resolves through it, plus the sandbox's host name, which
// programs expect to resolve.
func hostsFile(hostname string) []byte {
	hosts, err := os.ReadFile("/etc/hosts")
	if err != nil {
		hosts = []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	}
	if len(hosts) > 0 && !bytes.HasSuffix(hosts, []byte("\n")) {
		hosts = append(hosts, '\n')
	}
	return append(hosts, "127.0.0.1\t"+hostname+"\n"...)
}

// makeStubLayer creates in dir an empty directory or file for each mount
// that goes on the root filesystem, and the directories leading to it.
// A bind mount whose source is missing gets none: it is skipped
// ("nofail") or fails with its own error.
func makeStubLayer(dir string, mounts []Mount) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("stub layer: %w", err)
	}
	onRoot := []string{"/"}
	for _, m := range mounts[1:] {
		if parentMount(onRoot, m.Target) != "/" {
			continue
		}
		isDir := true
		if parseOptions(m.Options).flags&unix.MS_BIND != 0 {
			fi, err := os.Stat(m.Source)
			if err != nil {
				continue
			}
			isDir = fi.IsDir()
		}
		onRoot = append(onRoot, m.Target)
		p := filepath.Join(dir, m.Target)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("stub layer: %w", err)
		}
		var err error
		if isDir {
			err = os.Mkdir(p, 0o755)
		} else {
			err = os.WriteFile(p, nil, 0o644)
		}
		if err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("stub layer: %w", err)
		}
	}
	return nil
}

// stubLayerFits reports whether the filesystem of dir (or of its closest
// existing parent) is one where overlay maps a tmpfs layer's inode
// numbers without changing the others' (see withStubLayer): ext4 and
// tmpfs, whose inode numbers fit in 32 bits.
func stubLayerFits(dir string) bool {
	var st unix.Statfs_t
	for {
		err := unix.Statfs(dir, &st)
		if err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if !errors.Is(err, unix.ENOENT) || parent == dir {
			return false
		}
		dir = parent
	}
	switch st.Type {
	case unix.EXT4_SUPER_MAGIC, unix.TMPFS_MAGIC:
		return true
	}
	return false
}
