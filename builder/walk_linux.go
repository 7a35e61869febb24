package builder

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/moby/patternmatcher"
	"golang.org/x/sys/unix"
)

// origin is where a top-level source's data comes from: an entry of a
// source tree, or inline data (heredocs).
type origin struct {
	root *rootFS
	rel  string
	data string
}

// copyTop copies one source following BuildKit's prepareTargetDir: a file
// goes into the destination if it is an existing directory (named base),
// else becomes the destination; a directory's contents are merged into the
// destination, which is created if missing and otherwise keeps its owner
// and mode (it only takes the source directory's times).
func (c *copier) copyTop(o origin, base string, st *unix.Stat_t) error {
	dest, err := c.ensureDest()
	if err != nil {
		return err
	}
	destSt, err := c.dst.lstat(dest)
	exists := err == nil
	if err != nil && !isNotExist(err) {
		return err
	}
	srcIsDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	destIsDir := exists && destSt.Mode&unix.S_IFMT == unix.S_IFDIR
	target := dest
	if !srcIsDir && destIsDir {
		target = path.Join(dest, base)
	}
	parent := relDir(target)
	if srcIsDir && !exists {
		parent = target
	}
	pd, err := c.mkdirs(parent)
	if err != nil {
		return err
	}
	defer pd.close()
	if !srcIsDir {
		return c.copyNonDir(o, path.Base("/"+o.rel), st, pd, path.Base("/"+target))
	}
	if exists && !destIsDir {
		return fmt.Errorf("cannot copy to non-directory: /%s", target)
	}
	td := pd
	if exists {
		if td, err = c.dst.openDir(target); err != nil {
			return err
		}
		defer td.close()
	}
	sd, err := o.root.openDir(o.rel)
	if err != nil {
		return err
	}
	defer sd.close()
	if err := c.copyTree(sd, o.rel, target); err != nil {
		return err
	}
	return copyTimes(c.dst, target, st)
}

// relDir is path.Dir for root-relative paths ("" is the root).
func relDir(rel string) string {
	d := path.Dir(rel)
	if d == "." || d == "/" {
		return ""
	}
	return d
}

// dstDir is a destination directory of the walk, created on demand: a
// directory holding only excluded entries is not created (fsutil's
// delayed parent creation for include/exclude patterns).
type dstDir struct {
	parent  *dstDir
	name    string
	st      unix.Stat_t // its source directory
	fd      *dirFD
	created bool
}

// copyTree copies the entries of source directory sd (tree-relative
// srcRel) into the destination directory at the top of the walk.
func (c *copier) copyTree(sd *dirFD, srcRel, destRel string) error {
	top, err := c.dst.openDir(destRel)
	if err != nil {
		return err
	}
	root := &dstDir{fd: top}
	defer top.close()
	var m matchState
	if m.ignore, err = c.ignore.stateFor(relDirTree(srcRel)); err != nil {
		return err
	}
	if srcRel != "" {
		if _, m.ignore, err = c.ignore.excluded(srcRel, m.ignore); err != nil {
			return err
		}
	}
	return c.copyDir(sd, srcRel, "", root, m)
}

func relDirTree(rel string) string {
	if !strings.Contains(rel, "/") {
		return ""
	}
	return path.Dir(rel)
}

// matchState carries the pattern matchers' parent results down the walk.
type matchState struct {
	ignore, include, exclude patternmatcher.MatchInfo
}

// entryFilter decides about one entry: skip it entirely, or copy it
// (included) or only walk it for included children.
func (c *copier) entryFilter(srcRel, comp string, isDir bool, m matchState) (skip, included bool, next matchState, err error) {
	ignored, info, err := c.ignore.excluded(srcRel, m.ignore)
	if err != nil {
		return false, false, next, err
	}
	next.ignore = info
	if ignored && (!isDir || !c.ignore.descend()) {
		return true, false, next, nil
	}
	included = !ignored
	if c.include != nil {
		var ok bool
		if ok, next.include, err = c.include.MatchesUsingParentResults(comp, m.include); err != nil {
			return false, false, next, err
		}
		included = included && ok
	}
	if c.exclude != nil {
		var ex bool
		if ex, next.exclude, err = c.exclude.MatchesUsingParentResults(comp, m.exclude); err != nil {
			return false, false, next, err
		}
		if ex {
			included = false
			if !isDir || !c.exclude.Exclusions() {
				return true, false, next, nil
			}
		}
	}
	if !isDir && !included {
		return true, false, next, nil
	}
	return false, included, next, nil
}

// copyDir copies the entries of sd into d, recursively. comp is the path
// relative to the source being copied (what --exclude and --parents
// patterns match); srcRel is tree-relative (what .dockerignore matches).
func (c *copier) copyDir(sd *dirFD, srcRel, comp string, d *dstDir, m matchState) error {
	names, err := readDirNames(sd)
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Fstatat(sd.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &fs.PathError{Op: "lstat", Path: path.Join(srcRel, name), Err: err}
		}
		cSrc, cComp := path.Join(srcRel, name), path.Join(comp, name)
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		skip, included, next, err := c.entryFilter(cSrc, cComp, isDir, m)
		if err != nil || skip {
			if err != nil {
				return err
			}
			continue
		}
		if !isDir {
			dfd, err := c.ensureDir(d)
			if err != nil {
				return err
			}
			if err := c.copyNonDir(origin{root: nil, rel: cSrc}, name, &st, dfd, name, sd); err != nil {
				return err
			}
			continue
		}
		if err := c.copySubdir(sd, name, &st, cSrc, cComp, d, included, next); err != nil {
			return err
		}
	}
	return nil
}

func (c *copier) copySubdir(sd *dirFD, name string, st *unix.Stat_t, cSrc, cComp string, d *dstDir, included bool, m matchState) error {
	child := &dstDir{parent: d, name: name, st: *st}
	defer func() { child.fd.close() }()
	if included {
		if _, err := c.ensureDir(child); err != nil {
			return err
		}
	}
	fd, err := unix.Openat(sd.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: cSrc, Err: err}
	}
	csd := &dirFD{fd: fd, rel: cSrc}
	defer csd.close()
	if err := c.copyDir(csd, cSrc, cComp, child, m); err != nil {
		return err
	}
	if child.fd == nil || !(included || child.created) {
		return nil
	}
	// Metadata last: writing the children changed the mtime.
	return c.applyMeta(child.fd.fd, child.parent.fd, name, st, csd.fd)
}

// ensureDir creates (or opens, merging) the destination directory d and
// its pending parents.
func (c *copier) ensureDir(d *dstDir) (*dirFD, error) {
	if d.fd != nil {
		return d.fd, nil
	}
	pfd, err := c.ensureDir(d.parent)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	err = unix.Fstatat(pfd.fd, d.name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return nil, fmt.Errorf("cannot copy to non-directory: /%s", path.Join(pfd.rel, d.name))
	case err == nil:
	case errors.Is(err, unix.ENOENT):
		if err := unix.Mkdirat(pfd.fd, d.name, 0o700); err != nil {
			return nil, &fs.PathError{Op: "mkdir", Path: "/" + path.Join(pfd.rel, d.name), Err: err}
		}
		d.created = true
	default:
		return nil, &fs.PathError{Op: "lstat", Path: "/" + path.Join(pfd.rel, d.name), Err: err}
	}
	fd, err := unix.Openat(pfd.fd, d.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: "/" + path.Join(pfd.rel, d.name), Err: err}
	}
	d.fd = &dirFD{fd: fd, rel: path.Join(pfd.rel, d.name)}
	return d.fd, nil
}

// copyNonDir copies a file, symlink, device or fifo to name in directory
// dd, replacing a non-directory already there. o is the top-level origin;
// inside a walk, from is the source directory holding srcName.
func (c *copier) copyNonDir(o origin, srcName string, st *unix.Stat_t, dd *dirFD, name string, from ...*dirFD) error {
	destRel := path.Join(dd.rel, name)
	if err := replaceNonDir(dd, name); err != nil {
		return err
	}
	var sdir *dirFD
	switch {
	case len(from) > 0:
		sdir = from[0]
	case o.root != nil:
		d, err := o.root.openDir(relDir(o.rel))
		if err != nil {
			return err
		}
		defer d.close()
		sdir = d
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if st.Nlink > 1 && sdir != nil {
			key := inodeKey{dev: st.Dev, ino: st.Ino}
			if first, ok := c.inodes[key]; ok {
				return c.link(first, dd, name)
			}
			c.inodes[key] = destRel
		}
		return c.copyFile(o, sdir, srcName, st, dd, name)
	case unix.S_IFLNK:
		target, err := readlinkAt(sdir.fd, srcName)
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(target, dd.fd, name); err != nil {
			return &fs.PathError{Op: "symlink", Path: "/" + destRel, Err: err}
		}
		return c.applyMeta(-1, dd, name, st, -1)
	default:
		mode := st.Mode
		if mode&unix.S_IFMT == unix.S_IFSOCK {
			mode = unix.S_IFREG | mode&0o7777 // sockets become empty files, like fsutil
		}
		if err := unix.Mknodat(dd.fd, name, mode, int(st.Rdev)); err != nil {
			return &fs.PathError{Op: "mknod", Path: "/" + destRel, Err: err}
		}
		return c.applyMeta(-1, dd, name, st, -1)
	}
}

// replaceNonDir removes what is at name unless it is a directory, which a
// non-directory cannot replace (BuildKit's ensureEmptyFileTarget).
func replaceNonDir(dd *dirFD, name string) error {
	var st unix.Stat_t
	err := unix.Fstatat(dd.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return &fs.PathError{Op: "lstat", Path: "/" + path.Join(dd.rel, name), Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("cannot replace to directory /%s with file", path.Join(dd.rel, name))
	}
	if err := unix.Unlinkat(dd.fd, name, 0); err != nil {
		return &fs.PathError{Op: "remove", Path: "/" + path.Join(dd.rel, name), Err: err}
	}
	return nil
}

// copyFile writes a regular file's content (copy_file_range when the
// kernel can) and its metadata.
func (c *copier) copyFile(o origin, sdir *dirFD, srcName string, st *unix.Stat_t, dd *dirFD, name string) (err error) {
	destRel := path.Join(dd.rel, name)
	dfd, err := unix.Openat(dd.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &fs.PathError{Op: "create", Path: "/" + destRel, Err: err}
	}
	df := os.NewFile(uintptr(dfd), destRel)
	defer func() {
		if cerr := df.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	var src io.Reader = strings.NewReader(o.data)
	sfd := -1
	if sdir != nil {
		if sfd, err = unix.Openat(sdir.fd, srcName, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err != nil {
			return &fs.PathError{Op: "open", Path: path.Join(sdir.rel, srcName), Err: err}
		}
		sf := os.NewFile(uintptr(sfd), srcName)
		defer sf.Close()
		src = sf
	}
	if _, err := io.Copy(df, src); err != nil {
		return fmt.Errorf("copy to /%s: %w", destRel, err)
	}
	return c.applyMeta(dfd, dd, name, st, sfd)
}

// link makes name in dd a hardlink to the destination path first.
func (c *copier) link(first string, dd *dirFD, name string) error {
	fd, err := c.dst.openDir(relDir(first))
	if err != nil {
		return err
	}
	defer fd.close()
	if err := unix.Linkat(fd.fd, path.Base(first), dd.fd, name, 0); err != nil {
		return &fs.PathError{Op: "link", Path: "/" + path.Join(dd.rel, name), Err: err}
	}
	return nil
}

// applyMeta sets owner, mode, xattrs and times of a copied entry. fd is the
// entry opened (-1 for symlinks and devices, handled by name in dd);
// srcFD is the source opened, for its xattrs (-1: none to copy).
func (c *copier) applyMeta(fd int, dd *dirFD, name string, st *unix.Stat_t, srcFD int) error {
	destRel := "/" + path.Join(dd.rel, name)
	owner := c.ownerFor(st)
	isLink := st.Mode&unix.S_IFMT == unix.S_IFLNK
	var err error
	if fd >= 0 {
		err = unix.Fchown(fd, owner.UID, owner.GID)
	} else {
		err = unix.Fchownat(dd.fd, name, owner.UID, owner.GID, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		return &fs.PathError{Op: "chown", Path: destRel, Err: err}
	}
	if !isLink {
		mode := c.modeFor(st)
		if fd >= 0 {
			err = unix.Fchmod(fd, mode)
		} else {
			err = unix.Fchmodat(dd.fd, name, mode, 0)
		}
		if err != nil {
			return &fs.PathError{Op: "chmod", Path: destRel, Err: err}
		}
	}
	if fd >= 0 && srcFD >= 0 {
		copyXattrs(srcFD, fd)
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(dd.fd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "utimes", Path: destRel, Err: err}
	}
	return nil
}

// copyTimes gives the destination directory rel the source's times.
func copyTimes(r *rootFS, rel string, st *unix.Stat_t) error {
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if rel == "" {
		d, err := r.openDir("")
		if err != nil {
			return err
		}
		defer d.close()
		return unix.UtimesNanoAt(d.fd, ".", ts, 0)
	}
	d, err := r.openDir(relDir(rel))
	if err != nil {
		return err
	}
	defer d.close()
	if err := unix.UtimesNanoAt(d.fd, path.Base(rel), ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "utimes", Path: "/" + rel, Err: err}
	}
	return nil
}

// copyXattrs copies extended attributes, except the host's SELinux label
// and overlayfs' own, ignoring failures like BuildKit (a filesystem
// without user xattrs must not fail a COPY).
func copyXattrs(src, dst int) {
	size, err := unix.Flistxattr(src, nil)
	if err != nil || size <= 0 {
		return
	}
	buf := make([]byte, size)
	n, err := unix.Flistxattr(src, buf)
	if err != nil {
		return
	}
	for _, key := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if key == "" || key == "security.selinux" || strings.HasPrefix(key, "trusted.overlay.") || strings.HasPrefix(key, "user.overlay.") {
			continue
		}
		vsize, err := unix.Fgetxattr(src, key, nil)
		if err != nil {
			continue
		}
		val := make([]byte, vsize)
		if vsize, err = unix.Fgetxattr(src, key, val); err != nil {
			continue
		}
		_ = unix.Fsetxattr(dst, key, val[:vsize], 0)
	}
}

// readDirNames lists a directory, sorted (the walk order is lexical).
func readDirNames(d *dirFD) ([]string, error) {
	fd, err := unix.Openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: d.rel, Err: err}
	}
	f := os.NewFile(uintptr(fd), d.rel)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

func readlinkAt(dirfd int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	return string(buf[:n]), nil
}
