//go:build linux

package layer

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Normalize (DiffOptions.Normalize) rewrites the walked directory so that
// it equals what Apply makes of the layer in overlay form; see
// docs/layers-format.md §4. Each function runs right after its entry is
// written; a directory's after its children.

// emitWhiteout writes the OCI whiteout of an overlay whiteout (either
// form) and, normalizing, re-creates it as Apply would.
func (d *differ) emitWhiteout(n *node) error {
	if err := d.tw.WriteHeader(d.markerHeader(joinPath(n.dir, whiteoutPrefix+n.name))); err != nil {
		return fmt.Errorf("write header %s: %w", n.rel, err)
	}
	if !d.normalize {
		return nil
	}
	// Re-create it as Apply would: a fresh 0:0 device, mode 0, no xattrs,
	// not linked to overlay's shared whiteout inode.
	if err := unix.Unlinkat(n.dirfd, n.name, 0); err != nil {
		return fmt.Errorf("normalize whiteout %s: %w", n.rel, err)
	}
	if err := unix.Mknodat(n.dirfd, n.name, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("normalize whiteout %s: %w", n.rel, err)
	}
	if err := setTimesAt(n.dirfd, n.name, d.epoch); err != nil {
		return fmt.Errorf("normalize whiteout %s: %w", n.rel, err)
	}
	return nil
}

// normalizeNode makes a non-whiteout entry on disk match its tar header.
func (d *differ) normalizeNode(n *node, mtime time.Time) error {
	if n.st.Mode&unix.S_IFMT != unix.S_IFDIR && n.st.Nlink > 1 && d.links[idOf(&n.st)] != n.rel {
		return nil // a later link of an inode already normalized
	}
	for _, x := range n.xattrs {
		if !droppedXattr(x) || (x == overlayOpaque && n.trustedY) {
			continue
		}
		if err := removeXattr(n.abs, x); err != nil {
			return fmt.Errorf("normalize %s: %w", n.rel, err)
		}
	}
	if n.opaque && !n.trustedY {
		// Apply writes the opaque marker in the trusted namespace.
		if err := unix.Lsetxattr(n.abs, overlayOpaque, []byte("y"), 0); err != nil {
			return fmt.Errorf("normalize %s: set xattr %s: %w", n.rel, overlayOpaque, err)
		}
	}
	if err := setTimesAt(n.dirfd, n.name, mtime); err != nil {
		return fmt.Errorf("normalize %s: %w", n.rel, err)
	}
	return nil
}
