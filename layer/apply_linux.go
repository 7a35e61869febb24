//go:build linux

package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// Apply writes the layer read from r (gzip, zstd or uncompressed tar,
// detected from its first bytes) into the existing directory root and
// returns the layer's descriptor, computed from the bytes read.
//
// Every entry is resolved inside root as in a chroot (openat2 with
// RESOLVE_IN_ROOT): absolute names are taken relative to root, and
// symlinks met on the way, including ones the layer itself creates, are
// followed without ever leaving it. Names and hardlink targets that climb
// out with ".." are refused with ErrUnsafePath. The final component is
// never followed: an existing entry there is replaced (a directory over a
// directory is merged, as image-spec layer.md "Changeset over existing
// files" says).
//
// Whiteouts follow opts.Whiteout: [OverlayWhiteouts] (for a fresh, empty
// root: one snapshot per layer) writes ".wh.<name>" as a 0:0 character
// device and ".wh..wh..opq" as trusted.overlay.opaque=y; [MergeWhiteouts]
// deletes what they name from root, except paths this layer created.
//
// Owners (numeric), permission and special bits, mtimes (directories' set
// after all their children), xattrs (except trusted.overlay.*,
// user.overlay.* and security.selinux, which a layer may not carry),
// devices, fifos and hardlinks within root are reproduced; atime is set to
// mtime. Apply needs CAP_CHOWN/CAP_MKNOD for foreign owners and devices.
//
// r is read to EOF. If opts.Digest or opts.DiffID is set and differs from
// what was read, the error wraps ErrDigestMismatch; past opts.MaxSize
// uncompressed bytes, ErrTooLarge. On any error root is left partly
// written: the caller discards it. Apply does not fsync.
func Apply(ctx context.Context, root string, r io.Reader, opts ApplyOptions) (Descriptor, error) {
	if opts.Whiteout != OverlayWhiteouts && opts.Whiteout != MergeWhiteouts {
		return Descriptor{}, fmt.Errorf("apply layer to %s: unknown whiteout mode %d", root, opts.Whiteout)
	}
	max := opts.MaxSize
	if max <= 0 {
		max = defaultMaxSize
	}
	s, err := openLayer(r, max)
	if err != nil {
		return Descriptor{}, fmt.Errorf("apply layer to %s: %w", root, err)
	}
	defer s.close()
	ir, err := openRoot(root)
	if err != nil {
		return Descriptor{}, fmt.Errorf("apply layer: %w", err)
	}
	defer ir.close()
	a := &applier{
		ctx:      ctx,
		root:     ir,
		mode:     opts.Whiteout,
		max:      max,
		dirTimes: make(map[string]time.Time),
		buf:      make([]byte, 1<<20),
	}
	if a.mode == MergeWhiteouts {
		a.unpacked = make(map[string]struct{})
	}
	if err := a.run(tar.NewReader(s.tar)); err != nil {
		return Descriptor{}, fmt.Errorf("apply layer to %s: %w", root, err)
	}
	d, err := s.finish()
	if err == nil {
		err = verify(d, opts.Digest, opts.DiffID)
	}
	if err != nil {
		return Descriptor{}, fmt.Errorf("apply layer to %s: %w", root, err)
	}
	return d, nil
}

// applier is the state of one Apply.
type applier struct {
	ctx      context.Context
	root     *inRoot
	mode     WhiteoutMode
	max      int64                // bound on the sum of file sizes too (sparse files expand)
	written  int64                // sum of regular file sizes so far
	dirTimes map[string]time.Time // set once all entries are written
	unpacked map[string]struct{}  // MergeWhiteouts: paths this layer created, and their parents
	buf      []byte
}

func (a *applier) run(tr *tar.Reader) error {
	for {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read entry: %w", err)
		}
		if err := a.entry(hdr, tr); err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
	}
	return a.setDirTimes()
}

// entry applies one tar entry.
func (a *applier) entry(hdr *tar.Header, tr io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "." {
		if hdr.Typeflag == tar.TypeDir {
			return nil // the root's own entry: the root belongs to the caller
		}
		return fmt.Errorf("entry would replace the root: %w", ErrUnsafePath)
	}
	dir, base, kind, err := parseWhiteout(name)
	if err != nil {
		return err
	}
	switch kind {
	case whiteoutMeta:
		return nil
	case whiteoutOpaque:
		return a.opaque(dir)
	case whiteoutFile:
		return a.whiteout(dir, base, hdr.ModTime)
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse, tar.TypeDir, tar.TypeSymlink, tar.TypeLink,
		tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return fmt.Errorf("unsupported entry type %q", hdr.Typeflag)
	}
	pfd, err := a.root.dir(dir, a.madeDir)
	if err != nil {
		return err
	}
	a.record(name)
	switch hdr.Typeflag {
	case tar.TypeDir:
		return a.mkdir(pfd, base, name, hdr)
	case tar.TypeReg, tar.TypeGNUSparse:
		return a.file(pfd, base, hdr, tr)
	case tar.TypeLink:
		return a.link(pfd, base, hdr)
	}
	return a.special(pfd, base, hdr)
}

// madeDir notes a parent directory Apply had to create because the layer
// has no entry for it: mode 0755, owner of the caller, mtime DefaultEpoch
// (not "now", so a snapshot stays reproducible).
func (a *applier) madeDir(rel string) error {
	a.dirTimes[rel] = time.Unix(DefaultEpoch, 0)
	a.record(rel)
	return nil
}

// record notes, for MergeWhiteouts, that this layer created p (and so p's
// parents are in the layer too): whiteouts apply only to lower layers
// (image-spec layer.md, "Whiteouts").
func (a *applier) record(p string) {
	if a.unpacked == nil {
		return
	}
	for p != "." {
		if _, ok := a.unpacked[p]; ok {
			return
		}
		a.unpacked[p] = struct{}{}
		p = path.Dir(p)
	}
}

// create runs mk; if the name is taken, it removes what is there
// (recursively for a directory, never following a symlink) and runs mk
// again.
func (a *applier) create(pfd int, base string, mk func() error) error {
	err := mk()
	if !errors.Is(err, unix.EEXIST) {
		return err
	}
	if err := removeAllAt(pfd, base); err != nil {
		return err
	}
	a.root.invalidate()
	return mk()
}

func (a *applier) mkdir(pfd int, base, name string, hdr *tar.Header) error {
	existing := false
	err := unix.Mkdirat(pfd, base, 0o700)
	if errors.Is(err, unix.EEXIST) {
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("stat: %w", err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			existing, err = true, nil
		} else {
			err = a.create(pfd, base, func() error { return unix.Mkdirat(pfd, base, 0o700) })
		}
	}
	if err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open directory: %w", err)
	}
	defer unix.Close(fd)
	if err := setMeta(fd, hdr, existing); err != nil {
		return err
	}
	a.dirTimes[name] = hdr.ModTime
	return nil
}

func (a *applier) file(pfd int, base string, hdr *tar.Header, tr io.Reader) (err error) {
	if a.written += hdr.Size; hdr.Size < 0 || a.written > a.max {
		return fmt.Errorf("files larger than %d bytes: %w", a.max, ErrTooLarge)
	}
	var fd int
	err = a.create(pfd, base, func() (err error) {
		fd, err = unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		return err
	})
	if err != nil {
		return fmt.Errorf("create file: %w", err)
	}
	f := os.NewFile(uintptr(fd), base)
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close file: %w", cerr)
		}
	}()
	if err := a.copyData(f, tr, hdr.Size); err != nil {
		return err
	}
	if err := setMeta(fd, hdr, false); err != nil {
		return err
	}
	return setTimesAt(pfd, base, hdr.ModTime)
}

// copyData copies exactly size bytes of entry content to f.
func (a *applier) copyData(f *os.File, r io.Reader, size int64) error {
	for left := size; left > 0; {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		n, err := io.ReadFull(r, a.buf[:min(int64(len(a.buf)), left)])
		if n > 0 {
			if _, err := f.Write(a.buf[:n]); err != nil {
				return fmt.Errorf("write file: %w", err)
			}
			left -= int64(n)
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return fmt.Errorf("read content: %w", err)
		}
	}
	return nil
}

// link makes a hardlink to another entry of root. The target is resolved
// inside root like any name; its final component is not followed (a link
// to a symlink links the symlink).
func (a *applier) link(pfd int, base string, hdr *tar.Header) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hardlink target: %w", err)
	}
	if target == "." {
		return fmt.Errorf("hardlink to the root: %w", ErrUnsafePath)
	}
	tdir, tbase := splitPath(target)
	tfd, err := a.root.open(tdir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("resolve hardlink target %s: %w", target, err)
	}
	defer unix.Close(tfd)
	err = a.create(pfd, base, func() error { return unix.Linkat(tfd, tbase, pfd, base, 0) })
	if err != nil {
		return fmt.Errorf("hardlink to %s: %w", target, err)
	}
	return nil
}

// special makes a symlink, device node or fifo.
func (a *applier) special(pfd int, base string, hdr *tar.Header) error {
	perm := uint32(hdr.Mode & 0o7777)
	var mk func() error
	switch hdr.Typeflag {
	case tar.TypeSymlink:
		mk = func() error { return unix.Symlinkat(hdr.Linkname, pfd, base) }
	case tar.TypeChar, tar.TypeBlock:
		typ := uint32(unix.S_IFCHR)
		if hdr.Typeflag == tar.TypeBlock {
			typ = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		mk = func() error { return unix.Mknodat(pfd, base, typ|perm, int(dev)) }
	case tar.TypeFifo:
		mk = func() error { return unix.Mkfifoat(pfd, base, perm) }
	}
	if err := a.create(pfd, base, mk); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// Not a symlink (just created), so following is moot; this also
		// undoes the umask applied by mknodat.
		if err := unix.Fchmodat(pfd, base, perm, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	// There is no fd to fsetxattr on; go through the parent's descriptor
	// (l*xattr does not follow the final component).
	procPath := fmt.Sprintf("/proc/self/fd/%d/%s", pfd, base)
	for _, x := range xattrsFromPAX(hdr.PAXRecords) {
		err := unix.Lsetxattr(procPath, x[0], []byte(x[1]), 0)
		if err = tolerateXattr(err, x[0], false); err != nil {
			return fmt.Errorf("set xattr %s: %w", x[0], err)
		}
	}
	return setTimesAt(pfd, base, hdr.ModTime)
}

// setDirTimes sets the mtime of every directory the layer made or named,
// now that nothing more will be created in them. A path that is no longer
// a directory (a later entry replaced it) is skipped.
func (a *applier) setDirTimes() error {
	for _, rel := range slices.Sorted(maps.Keys(a.dirTimes)) {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		dir, base := splitPath(rel)
		pfd, err := a.root.dir(dir, nil)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			continue
		}
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		if err := setTimesAt(pfd, base, a.dirTimes[rel]); err != nil {
			return fmt.Errorf("directory %s: %w", rel, err)
		}
	}
	return nil
}
