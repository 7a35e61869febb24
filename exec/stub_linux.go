package exec

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Mountpoint stubs.
//
// A mount needs an existing target. When the image lacks one (/proc in a
// distroless image, /etc/hosts in scratch), the init creates it in the
// merged root, which puts it in the upper directory, and the parent removes
// it again after the run, so it never reaches the layer. Creating a stub
// inside a directory that only a lower layer has makes overlay copy that
// directory up; the parent removes the copy too when the step left it as
// it was (empty, same mode and owner), since a layer must only hold what
// the step changed.
//
// Only the init creates stubs, before any process of the step exists, so
// nothing races the checks below. The step cannot remove or replace a stub
// while it is mounted over, but it can rename a parent directory: the
// parent therefore resolves stub paths in the upper directory without
// following symlinks.

// mountpoints creates mountpoints in a merged root and reports each stub
// before it creates it.
type mountpoints struct {
	merged, upper string
	report        func(stub) error
}

// ensure makes target (a sandbox path on the root filesystem) exist as a
// directory (dir) or as a non-directory. It returns false, creating
// nothing, when the image has something there that must not be replaced: a
// non-directory on the way, or a directory where a file mount goes; the
// mount is then skipped. A symlink (or a file where a directory goes) as
// the last component is replaced for the run: mounting on it would follow
// it, possibly out of the root.
func (mp mountpoints) ensure(target string, dir bool) (bool, error) {
	parts := strings.Split(strings.Trim(target, "/"), "/")
	var pending []stub // lower directories that a creation below copies up
	for i := range parts {
		rel := strings.Join(parts[:i+1], "/")
		p := filepath.Join(mp.merged, rel)
		last := i == len(parts)-1
		needDir := dir || !last
		var st unix.Stat_t
		err := unix.Lstat(p, &st)
		missing := errors.Is(err, unix.ENOENT)
		if err != nil && !missing {
			return false, fmt.Errorf("mountpoint %s: %w", target, err)
		}
		typ := st.Mode & unix.S_IFMT
		switch {
		case missing:
		case needDir && typ == unix.S_IFDIR:
			if !last && mp.copiedUp(rel) {
				pending = append(pending, stub{Path: rel, Copied: true, Mode: st.Mode &^ unix.S_IFMT, UID: st.Uid, GID: st.Gid})
			}
			continue
		case !needDir && typ != unix.S_IFDIR && typ != unix.S_IFLNK:
			return true, nil // an existing file, device, … : mount over it
		case !last, typ == unix.S_IFDIR:
			return false, nil
		}
		for _, s := range append(pending, stub{Path: rel}) {
			if err := mp.report(s); err != nil {
				return false, err
			}
		}
		pending = nil
		if err := createStub(p, missing, needDir); err != nil {
			return false, fmt.Errorf("mountpoint %s: %w", target, err)
		}
	}
	return true, nil
}

// copiedUp reports whether an existing directory of the merged root comes
// from a lower layer only, so that creating inside it copies it up.
func (mp mountpoints) copiedUp(rel string) bool {
	var st unix.Stat_t
	return errors.Is(unix.Lstat(filepath.Join(mp.upper, rel), &st), unix.ENOENT)
}

func createStub(p string, missing, dir bool) error {
	if !missing {
		// NOTE: on overlay this leaves a whiteout until the stub replaces
		// it; the parent removes either, which uncovers the lower entry.
		if err := unix.Unlink(p); err != nil {
			return err
		}
	}
	if dir {
		return unix.Mkdir(p, 0o755)
	}
	fd, err := unix.Open(p, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// removeStubs removes from upper, newest first, the stubs the init
// reported. A stub is removed only if it still looks like one: an empty
// directory, an empty regular file or a whiteout; a copied-up directory
// only if it is empty, not opaque and has the lower directory's mode and
// owner. Anything else the step made there is kept.
//
// It does not guarantee that a copied-up directory whose only change was
// its mtime or an xattr keeps that change: such a directory is removed.
func removeStubs(upper string, stubs []stub) error {
	if len(stubs) == 0 {
		return nil
	}
	root, err := unix.Open(upper, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("remove mountpoints: open %s: %w", upper, err)
	}
	defer unix.Close(root)
	var errs []error
	for i := len(stubs) - 1; i >= 0; i-- {
		if err := removeStub(root, stubs[i]); err != nil {
			errs = append(errs, fmt.Errorf("remove mountpoint %s from %s: %w", stubs[i].Path, upper, err))
		}
	}
	return errors.Join(errs...)
}

func removeStub(root int, s stub) error {
	if !filepath.IsLocal(s.Path) {
		return errors.New("not a local path")
	}
	dir, base := filepath.Split(s.Path)
	dfd := root
	if dir != "" {
		// The step may have renamed a parent and put a symlink in its
		// place: resolve beneath upper, following nothing.
		fd, err := unix.Openat2(root, dir, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_XDEV,
		})
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return nil // not ours any more
		}
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		dfd = fd
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	typ := st.Mode & unix.S_IFMT
	switch {
	case typ == unix.S_IFDIR && s.Copied:
		if st.Mode&^unix.S_IFMT != s.Mode || st.Uid != s.UID || st.Gid != s.GID || !removableDir(dfd, base) {
			return nil
		}
		return ignoreNotEmpty(unix.Unlinkat(dfd, base, unix.AT_REMOVEDIR))
	case typ == unix.S_IFDIR:
		// A parent the init created may hold what the step wrote there.
		return ignoreNotEmpty(unix.Unlinkat(dfd, base, unix.AT_REMOVEDIR))
	case s.Copied:
		return nil
	case typ == unix.S_IFREG && st.Size == 0, typ == unix.S_IFCHR && st.Rdev == 0:
		return unix.Unlinkat(dfd, base, 0)
	}
	return nil
}

// removableDir reports whether a copied-up directory is empty and not
// opaque (an opaque directory hides the lower one: removing it would bring
// deleted entries back).
func removableDir(dfd int, base string) bool {
	fd, err := unix.Openat(dfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	for _, name := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		if _, err := unix.Fgetxattr(fd, name, nil); err == nil {
			return false
		}
	}
	buf := make([]byte, 4096)
	n, err := unix.Getdents(fd, buf)
	if err != nil {
		return false
	}
	_, _, names := unix.ParseDirent(buf[:n], -1, nil)
	for _, name := range names {
		if name != "." && name != ".." {
			return false
		}
	}
	return true
}

func ignoreNotEmpty(err error) error {
	if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}
