//go:build linux

package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Diff writes the layer of dir to w and returns its descriptor.
//
// dir is a plain directory or an overlay upperdir (unmounted, mounted with
// redirect_dir=off and metacopy=off so it is a complete diff). The tar
// follows docs/layers-format.md: one depth-first walk (per directory,
// whiteouts first, then byte-wise name order), PAX headers, numeric
// owners, mtimes clamped to opts.Epoch, hardlinks
// by (dev, inode), xattrs except overlay's and security.selinux, devices and
// fifos kept, sockets left out, overlay whiteouts (0:0 character devices,
// overlay.whiteout xattrs, overlay.opaque=y directories) written as OCI
// whiteouts. The stream is compressed as opts.Compression says; the diffID,
// the digest and both sizes are computed in the same pass. Memory is
// bounded whatever the layer's size: a few compression blocks and 8 MiB of
// small files read ahead.
//
// With opts.Normalize, dir is rewritten in place during the same walk so
// that it equals what [Apply] makes of the layer in [OverlayWhiteouts] mode:
// mtimes and atimes set to the clamped mtime (directories after their
// children), dropped xattrs removed, user.overlay.opaque turned into
// trusted.overlay.opaque, whiteouts re-created as plain 0:0 devices (mode
// 0, owner 0:0, epoch mtime), sockets removed.
//
// Errors: a file named ".wh.*" is ErrReservedName; a failed write to w is
// returned as is (wrapped). On error, w holds a partial stream and, with
// Normalize, dir is partly rewritten: the caller discards both. Diff does
// not close w and reads no environment (the caller passes
// SOURCE_DATE_EPOCH as opts.Epoch).
func Diff(ctx context.Context, dir string, w io.Writer, opts DiffOptions) (Descriptor, error) {
	comp := opts.Compression
	if comp == "" {
		comp = Gzip
	}
	if _, err := ParseCompression(string(comp)); err != nil {
		return Descriptor{}, fmt.Errorf("diff %s: %w", dir, err)
	}
	out := &stickyWriter{w: w}
	digest := newHashWriter(out)
	cw, err := newCompressor(comp, digest)
	if err != nil {
		return Descriptor{}, fmt.Errorf("diff %s: %w", dir, err)
	}
	diffID := digest
	if comp != Uncompressed {
		diffID = newHashWriter(cw)
	}
	d := &differ{
		ctx:       ctx,
		tw:        tar.NewWriter(diffID),
		out:       out,
		epoch:     epochOf(opts.Epoch),
		normalize: opts.Normalize,
		links:     make(map[fileID]string),
		buf:       make([]byte, 1<<20),
		pool:      make(chan []byte, chunkBuffers),
	}
	err = d.run(dir)
	if err == nil {
		err = d.tw.Close() // the two zero blocks that end a tar
	}
	if err != nil {
		out.abort(err) // let the compressor finish into the void
	}
	if cerr := cw.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close compressor: %w", cerr)
	}
	if werr := out.err(); err == nil && werr != nil {
		err = werr
	}
	if err != nil {
		return Descriptor{}, fmt.Errorf("diff %s: %w", dir, err)
	}
	return Descriptor{
		MediaType:        comp.MediaType(),
		Digest:           digest.sum(),
		Size:             digest.n,
		DiffID:           diffID.sum(),
		UncompressedSize: diffID.n,
	}, nil
}

// epochOf returns the clamp time: t in whole seconds, or DefaultEpoch.
func epochOf(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(DefaultEpoch, 0).UTC()
	}
	return time.Unix(t.Unix(), 0).UTC()
}

// fileID identifies an inode for hardlink detection (OCI layer.md,
// "Hardlinks": same device, same inode).
type fileID struct{ dev, ino uint64 }

func idOf(st *unix.Stat_t) fileID { return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)} }

// differ is the state of one Diff walk.
type differ struct {
	ctx       context.Context
	tw        *tar.Writer
	out       *stickyWriter
	epoch     time.Time
	normalize bool
	links     map[fileID]string // first layer path of each multiply linked inode
	buf       []byte            // file copy buffer
	xb        xattrBuf
	// atimeDenied: O_NOATIME was refused once (not the files' owner and
	// no CAP_FOWNER); later opens do without it. Set by the prefetcher too.
	atimeDenied atomic.Bool
	// Buffers for the prefetch workers (prefetch_linux.go): free ones, and
	// how many exist (guarded by the running prefetchJob's lock; one runs
	// at a time).
	pool      chan []byte
	allocated int
}

// node is one directory entry met by the walk.
type node struct {
	name, dir string // base name, and parent's layer path ("" for the root)
	rel, abs  string // layer path, host path
	dirfd     int    // the parent directory, open while its entries are emitted
	st        unix.Stat_t
	xattrs    []string // names, sorted
	listed    bool     // xattrs is filled (for files with content: once opened)
	pre       *fetched // content and xattrs read ahead, if any
	whiteout  bool     // an overlay whiteout, in either form
	opaque    bool     // an overlay opaque directory (trusted.* or user.* "y")
	trustedY  bool     // trusted.overlay.opaque=y is already set
}

func (d *differ) run(root string) error {
	root, err := filepath.EvalSymlinks(root) // the root itself may be a symlink
	if err != nil {
		return fmt.Errorf("resolve: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(root, &st); err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("stat: %w", unix.ENOTDIR)
	}
	if d.normalize {
		// The root is no entry, but overlay may have left its own
		// xattrs on it; Apply's root would not have them.
		names, err := d.xb.list(root)
		if err != nil {
			return err
		}
		for _, x := range names {
			if droppedXattr(x) {
				if err := removeXattr(root, x); err != nil {
					return err
				}
			}
		}
	}
	f, err := os.Open(root)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	return d.walkDir(f, root, "")
}

// walkDir emits the children of the directory at abs (layer path rel) and,
// recursively, their descendants. Order within a directory: whiteouts
// first, then everything else, each group in byte-wise order of the on-disk
// name. image-spec layer.md asks that "whiteout files appear before sibling
// directory entries"; otherwise this is lexical order.
//
// The directory f stays open while its entries are emitted (walkDir closes
// it): they are stat'ed, opened and timed relative to it, so the kernel
// does not walk the full path again for every file.
func (d *differ) walkDir(f *os.File, abs, rel string) error {
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read dir %s: %w", displayPath(rel), err)
	}
	dirfd := int(f.Fd())
	nodes := make([]*node, 0, len(names))
	for _, name := range names {
		n, keep, err := d.inspect(dirfd, abs, rel, name)
		if err != nil {
			return err
		}
		if keep {
			nodes = append(nodes, n)
		}
	}
	slices.SortFunc(nodes, func(a, b *node) int {
		if a.whiteout != b.whiteout {
			if a.whiteout {
				return -1
			}
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	// Runs of non-directories are emitted with their small files read
	// ahead; directories one by one (emit descends into them).
	for i := 0; i < len(nodes); {
		j := i
		for j < len(nodes) && !isDir(nodes[j]) {
			j++
		}
		if err := d.emitRun(nodes[i:j]); err != nil {
			return err
		}
		if j < len(nodes) {
			if err := d.emitChecked(nodes[j]); err != nil {
				return err
			}
			j++
		}
		i = j
	}
	return nil
}

// emitChecked emits n unless the walk must stop.
func (d *differ) emitChecked(n *node) error {
	if err := d.ctx.Err(); err != nil {
		return err
	}
	if err := d.out.err(); err != nil {
		return err
	}
	return d.emit(n)
}

func isDir(n *node) bool { return !n.whiteout && n.st.Mode&unix.S_IFMT == unix.S_IFDIR }

func displayPath(rel string) string {
	if rel == "" {
		return "."
	}
	return rel
}

// inspect stats one directory entry and classifies it. keep is false for
// entries a layer cannot hold (sockets).
func (d *differ) inspect(dirfd int, abs, rel, name string) (*node, bool, error) {
	n := &node{name: name, dir: rel, rel: joinPath(rel, name), abs: abs + "/" + name, dirfd: dirfd}
	if strings.HasPrefix(name, whiteoutPrefix) {
		return nil, false, fmt.Errorf("%s: %w", n.rel, ErrReservedName)
	}
	if err := unix.Fstatat(dirfd, name, &n.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, false, fmt.Errorf("stat %s: %w", n.rel, err)
	}
	switch n.st.Mode & unix.S_IFMT {
	case unix.S_IFSOCK:
		// Sockets are live endpoints, not content; tar cannot hold them.
		if d.normalize {
			if err := unix.Unlinkat(dirfd, name, 0); err != nil {
				return nil, false, fmt.Errorf("remove socket %s: %w", n.rel, err)
			}
		}
		return nil, false, nil
	case unix.S_IFCHR:
		n.whiteout = n.st.Rdev == 0
	case unix.S_IFREG:
		if n.st.Size > 0 {
			return n, true, nil // not a whiteout; xattrs are read once it is open
		}
	}
	var err error
	if n.xattrs, err = d.xb.list(n.abs); err != nil {
		return nil, false, fmt.Errorf("%s: %w", n.rel, err)
	}
	n.listed = true
	for _, x := range n.xattrs {
		switch typ := n.st.Mode & unix.S_IFMT; {
		case typ == unix.S_IFREG && n.st.Size == 0 && isOverlayWhiteoutXattr(x):
			n.whiteout = true
		case typ == unix.S_IFDIR && strings.HasSuffix(x, ".overlay.opaque"):
			v, err := d.xb.get(n.abs, x)
			if err != nil {
				return nil, false, fmt.Errorf("%s: %w", n.rel, err)
			}
			if isOverlayOpaqueXattr(x, v) {
				n.opaque = true
				n.trustedY = n.trustedY || x == overlayOpaque
			}
		}
	}
	return n, true, nil
}

// emit writes the entry (and, for a directory, its subtree) and normalizes
// it on disk if asked to.
func (d *differ) emit(n *node) error {
	if n.whiteout {
		return d.emitWhiteout(n)
	}
	hdr, err := d.header(n)
	if err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeLink {
		return d.writeHeader(hdr, n) // the first link carries content and metadata
	}
	if n.pre != nil {
		return d.emitFetched(n, hdr)
	}
	fd := -1
	if !n.listed {
		if fd, err = d.open(n); err != nil {
			return err
		}
		defer unix.Close(fd)
		if n.xattrs, err = d.xb.listFD(fd); err != nil {
			return fmt.Errorf("%s: %w", n.rel, err)
		}
	}
	if hdr.PAXRecords, err = xattrRecords(n, fd, &d.xb); err != nil {
		return err
	}
	if err := d.writeHeader(hdr, n); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		if err := d.copyFile(n, fd); err != nil {
			return err
		}
	case tar.TypeDir:
		if n.opaque {
			if err := d.tw.WriteHeader(d.markerHeader(joinPath(n.rel, opaqueMarker))); err != nil {
				return fmt.Errorf("write header %s: %w", n.rel, err)
			}
		}
		fd, err := unix.Openat(n.dirfd, n.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", n.rel, err)
		}
		if err := d.walkDir(os.NewFile(uintptr(fd), n.abs), n.abs, n.rel); err != nil {
			return err
		}
	}
	if d.normalize {
		return d.normalizeNode(n, hdr.ModTime)
	}
	return nil
}

// header builds the tar header of a non-whiteout entry.
func (d *differ) header(n *node) (*tar.Header, error) {
	mtime := time.Unix(int64(n.st.Mtim.Sec), 0).UTC() // whole seconds: no PAX mtime record
	if mtime.After(d.epoch) {
		mtime = d.epoch
	}
	hdr := &tar.Header{
		Format:  tar.FormatPAX,
		Name:    n.rel,
		Mode:    int64(n.st.Mode & 0o7777),
		Uid:     int(n.st.Uid),
		Gid:     int(n.st.Gid),
		ModTime: mtime,
	}
	typ := n.st.Mode & unix.S_IFMT
	if typ != unix.S_IFDIR && n.st.Nlink > 1 {
		id := idOf(&n.st)
		if first, ok := d.links[id]; ok {
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
			return hdr, nil
		}
		d.links[id] = n.rel
	}
	switch typ {
	case unix.S_IFDIR:
		hdr.Typeflag, hdr.Name = tar.TypeDir, n.rel+"/"
	case unix.S_IFREG:
		hdr.Typeflag, hdr.Size = tar.TypeReg, n.st.Size
	case unix.S_IFLNK:
		target, err := os.Readlink(n.abs)
		if err != nil {
			return nil, fmt.Errorf("read link %s: %w", n.rel, err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if typ == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(uint64(n.st.Rdev))), int64(unix.Minor(uint64(n.st.Rdev)))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil, fmt.Errorf("%s: unknown file type %#o", n.rel, typ)
	}
	return hdr, nil
}

func (d *differ) writeHeader(hdr *tar.Header, n *node) error {
	if err := d.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write header %s: %w", n.rel, err)
	}
	return nil
}

// xattrRecords reads the xattrs a layer keeps, through fd when the file
// is open (fd >= 0), as SCHILY.xattr PAX records (nil when none).
func xattrRecords(n *node, fd int, xb *xattrBuf) (map[string]string, error) {
	var recs map[string]string
	for _, x := range n.xattrs {
		if droppedXattr(x) {
			continue
		}
		var v string
		var err error
		if fd >= 0 {
			v, err = xb.getFD(fd, x)
		} else {
			v, err = xb.get(n.abs, x)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n.rel, err)
		}
		if recs == nil {
			recs = make(map[string]string)
		}
		recs[paxXattrPrefix+x] = v
	}
	return recs, nil
}

// markerHeader is the fixed header of an OCI whiteout or opaque marker:
// an empty regular file, mode 0, owner 0:0, mtime = epoch. Nothing about
// the deleted file leaks into it.
func (d *differ) markerHeader(name string) *tar.Header {
	return &tar.Header{Format: tar.FormatPAX, Typeflag: tar.TypeReg, Name: name, ModTime: d.epoch}
}

// open opens a regular file for reading, without following a final
// symlink and, while allowed (owner or CAP_FOWNER), without updating its
// atime.
func (d *differ) open(n *node) (int, error) {
	flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	if !d.atimeDenied.Load() {
		fd, err := unix.Openat(n.dirfd, n.name, flags|unix.O_NOATIME, 0)
		if !errors.Is(err, unix.EPERM) {
			return fd, wrapOpen(n, err)
		}
		d.atimeDenied.Store(true)
	}
	fd, err := unix.Openat(n.dirfd, n.name, flags, 0)
	return fd, wrapOpen(n, err)
}

func wrapOpen(n *node, err error) error {
	if err != nil {
		return fmt.Errorf("open %s: %w", n.rel, err)
	}
	return nil
}

// copyFile writes the content of a regular file, exactly st.Size bytes.
func (d *differ) copyFile(n *node, fd int) error {
	for left := n.st.Size; left > 0; {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		m, err := unix.Read(fd, d.buf[:min(int64(len(d.buf)), left)])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", n.rel, err)
		}
		if m == 0 {
			return fmt.Errorf("read %s: file shrank while being read", n.rel)
		}
		if _, err := d.tw.Write(d.buf[:m]); err != nil {
			return fmt.Errorf("write %s: %w", n.rel, err)
		}
		left -= int64(m)
	}
	return nil
}
