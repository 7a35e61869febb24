package builder

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// unpackFrom extracts the file rel of src into the destination if it is a
// tar archive (ADD's auto-extraction); done is false when it is not one and
// the caller should copy it as a file.
func (c *copier) unpackFrom(src *rootFS, rel string) (done bool, err error) {
	fd, err := src.open(rel)
	if err != nil {
		return false, err
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	ts, ok, err := openTar(f)
	if err != nil || !ok {
		return false, err
	}
	defer func() {
		if cerr := ts.finish(); err == nil {
			err = cerr
		}
	}()
	dest, err := c.dst.resolve(path.Clean(c.op.Dest))
	if err != nil {
		return true, err
	}
	d, err := c.dst.mkdirAll(dest, 0o755, c.parentOwner())
	if err != nil {
		return true, err
	}
	defer d.close()
	return true, c.extract(ts, d)
}

// extract applies a tar stream to the directory d the way Docker's
// chrootarchive.Untar does: d acts as the root (entry paths and symlinks
// resolve inside it), existing directories are merged, anything else in an
// entry's way is replaced, missing parents are created 0755 root-owned,
// owners come from the archive unless --chown, modes and times from the
// archive (--chmod does not apply), xattrs best effort. An entry or link
// leading outside d is an error wrapping [ErrUnsafePath].
func (c *copier) extract(ts *tarStream, d *dirFD) error {
	x := &rootFS{fd: d.fd, path: d.rel}
	type dirTimes struct {
		rel string
		hdr *tar.Header
	}
	var dirs []dirTimes
	for hdr := ts.first; hdr != nil; {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		rel, err := archivePath(hdr.Name)
		if err != nil {
			return err
		}
		if rel != "" && hdr.Typeflag != tar.TypeXGlobalHeader {
			placed, err := c.extractEntry(x, ts.tr, hdr, rel)
			if err != nil {
				return fmt.Errorf("extract %s: %w", hdr.Name, err)
			}
			if hdr.Typeflag == tar.TypeDir {
				dirs = append(dirs, dirTimes{placed, hdr})
			}
		}
		if hdr, err = ts.tr.Next(); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("read archive: %w", err)
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		st := unix.Stat_t{Atim: timespec(accessTime(dirs[i].hdr), dirs[i].hdr.ModTime), Mtim: timespec(dirs[i].hdr.ModTime, dirs[i].hdr.ModTime)}
		if err := copyTimes(x, dirs[i].rel, &st); err != nil {
			return err
		}
	}
	return nil
}

// archivePath cleans an entry name; one climbing out of the destination
// is refused, as Docker does ("breakout").
func archivePath(name string) (string, error) {
	p := path.Clean(name)
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("archive entry %q: outside the destination: %w", name, ErrUnsafePath)
	}
	return cleanRel(p), nil
}

// extractEntry writes one entry; it returns where it was placed (the
// entry's parent resolved inside the extraction root).
func (c *copier) extractEntry(x *rootFS, tr *tar.Reader, hdr *tar.Header, rel string) (string, error) {
	parentRel, err := x.resolve(relDir(rel))
	if err != nil {
		return "", err
	}
	pd, err := x.mkdirAll(parentRel, 0o755, Owner{})
	if err != nil {
		return "", err
	}
	defer pd.close()
	name := path.Base(rel)
	placed := path.Join(parentRel, name)
	if err := clearForEntry(pd, name, hdr.Typeflag == tar.TypeDir); err != nil {
		return "", err
	}
	st := headerStat(hdr)
	if c.owner != nil {
		st.Uid, st.Gid = uint32(c.owner.UID), uint32(c.owner.GID)
	}
	meta := &copier{owner: &Owner{UID: int(st.Uid), GID: int(st.Gid)}, op: &CopyOp{}}
	switch hdr.Typeflag {
	case tar.TypeDir:
		err = unix.Mkdirat(pd.fd, name, 0o700)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return "", &fs.PathError{Op: "mkdir", Path: "/" + placed, Err: err}
		}
		fd, err := unix.Openat(pd.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", &fs.PathError{Op: "open", Path: "/" + placed, Err: err}
		}
		defer unix.Close(fd)
		return placed, meta.applyMetaXattrs(fd, pd, name, &st, hdr)
	case tar.TypeReg:
		return placed, meta.extractFile(tr, pd, name, &st, hdr)
	case tar.TypeSymlink:
		if t := path.Join(relDir(rel), hdr.Linkname); !strings.HasPrefix(hdr.Linkname, "/") && (t == ".." || strings.HasPrefix(t, "../")) {
			return "", fmt.Errorf("symlink %s -> %s: outside the destination: %w", hdr.Name, hdr.Linkname, ErrUnsafePath)
		}
		if err := unix.Symlinkat(hdr.Linkname, pd.fd, name); err != nil {
			return "", &fs.PathError{Op: "symlink", Path: "/" + placed, Err: err}
		}
		return placed, meta.applyMeta(-1, pd, name, &st, -1)
	case tar.TypeLink:
		if err := c.extractHardlink(x, hdr, pd, name); err != nil {
			return "", err
		}
		// Like Docker, the link entry's owner, mode and times are applied
		// to the inode (unless it is a symlink's).
		var lst unix.Stat_t
		if err := unix.Fstatat(pd.fd, name, &lst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return "", err
		}
		if lst.Mode&unix.S_IFMT == unix.S_IFLNK {
			st.Mode = unix.S_IFLNK
		}
		return placed, meta.applyMeta(-1, pd, name, &st, -1)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		if err := unix.Mknodat(pd.fd, name, st.Mode, int(st.Rdev)); err != nil {
			return "", &fs.PathError{Op: "mknod", Path: "/" + placed, Err: err}
		}
		return placed, meta.applyMeta(-1, pd, name, &st, -1)
	}
	return "", fmt.Errorf("unhandled tar header type %d", hdr.Typeflag)
}

// clearForEntry removes what is in the way of an entry, except a directory
// when the entry is one too (they merge).
func clearForEntry(pd *dirFD, name string, isDir bool) error {
	var st unix.Stat_t
	err := unix.Fstatat(pd.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if isDir {
			return nil
		}
		return removeAllAt(pd.fd, name)
	}
	return unix.Unlinkat(pd.fd, name, 0)
}

// removeAllAt removes directory name of dirfd and everything below it,
// never following a symlink.
func removeAllAt(dirfd int, name string) error {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	d := &dirFD{fd: fd, rel: name}
	names, err := readDirNames(d)
	if err == nil {
		for _, n := range names {
			var st unix.Stat_t
			if err = unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				break
			}
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				err = removeAllAt(fd, n)
			} else {
				err = unix.Unlinkat(fd, n, 0)
			}
			if err != nil {
				break
			}
		}
	}
	d.close()
	if err != nil {
		return err
	}
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}

func (c *copier) extractFile(tr io.Reader, pd *dirFD, name string, st *unix.Stat_t, hdr *tar.Header) (err error) {
	fd, err := unix.Openat(pd.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &fs.PathError{Op: "create", Path: "/" + path.Join(pd.rel, name), Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := io.Copy(f, tr); err != nil {
		return err
	}
	return c.applyMetaXattrs(fd, pd, name, st, hdr)
}

// extractHardlink links name to an earlier entry of the archive.
func (c *copier) extractHardlink(x *rootFS, hdr *tar.Header, pd *dirFD, name string) error {
	target, err := archivePath(hdr.Linkname)
	if err != nil || target == "" {
		return fmt.Errorf("hardlink %s -> %s: outside the destination: %w", hdr.Name, hdr.Linkname, ErrUnsafePath)
	}
	tdir, err := x.resolve(relDir(target))
	if err != nil {
		return err
	}
	td, err := x.openDir(tdir)
	if err != nil {
		return err
	}
	defer td.close()
	if err := unix.Linkat(td.fd, path.Base(target), pd.fd, name, 0); err != nil {
		return &fs.PathError{Op: "link", Path: "/" + path.Join(pd.rel, name), Err: err}
	}
	return nil
}

// applyMetaXattrs is applyMeta plus the archive's PAX xattrs.
func (c *copier) applyMetaXattrs(fd int, pd *dirFD, name string, st *unix.Stat_t, hdr *tar.Header) error {
	for k, v := range hdr.PAXRecords {
		if key, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			_ = unix.Fsetxattr(fd, key, []byte(v), 0) // best effort, like Docker
		}
	}
	return c.applyMeta(fd, pd, name, st, -1)
}

// headerStat describes a tar entry as a stat result.
func headerStat(hdr *tar.Header) unix.Stat_t {
	mode := toBits(hdr.FileInfo().Mode())
	switch hdr.Typeflag {
	case tar.TypeDir:
		mode |= unix.S_IFDIR
	case tar.TypeSymlink:
		mode |= unix.S_IFLNK
	case tar.TypeChar:
		mode |= unix.S_IFCHR
	case tar.TypeBlock:
		mode |= unix.S_IFBLK
	case tar.TypeFifo:
		mode |= unix.S_IFIFO
	default:
		mode |= unix.S_IFREG
	}
	return unix.Stat_t{
		Mode: mode,
		Uid:  uint32(hdr.Uid),
		Gid:  uint32(hdr.Gid),
		Rdev: unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)),
		Atim: timespec(accessTime(hdr), hdr.ModTime),
		Mtim: timespec(hdr.ModTime, hdr.ModTime),
	}
}

// accessTime is Docker's: never before the modification time.
func accessTime(hdr *tar.Header) time.Time {
	if hdr.AccessTime.Before(hdr.ModTime) {
		return hdr.ModTime
	}
	return hdr.AccessTime
}

// timespec is t, or fallback when t is zero.
func timespec(t, fallback time.Time) unix.Timespec {
	if t.IsZero() {
		t = fallback
	}
	ts, _ := unix.TimeToTimespec(t) // out of range only past year 2262
	return ts
}
