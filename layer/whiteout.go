package layer

import (
	"fmt"
	"path"
	"strings"
)

// OCI whiteouts (image-spec layer.md, "Whiteouts" and "Opaque Whiteout"):
// an empty regular file named ".wh.<name>" deletes <name> from the layers
// below; one named ".wh..wh..opq" hides every lower child of its directory.
// "it is not possible to create a filesystem which has a file or directory
// with a name beginning with .wh." — hence ErrReservedName in Diff.
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// Overlay's own whiteout and opaque markers (kernel
// Documentation/filesystems/overlayfs.rst, "whiteouts and opaque
// directories"), in the trusted.* namespace or, for mounts with
// "userxattr", the user.* one. A 0:0 character device is the third form.
const (
	overlayPrefixTrusted = "trusted.overlay."
	overlayPrefixUser    = "user.overlay."
	overlayOpaque        = "trusted.overlay.opaque"
	xattrSELinux         = "security.selinux"
	paxXattrPrefix       = "SCHILY.xattr."
)

// droppedXattr reports whether an xattr never travels in a layer:
// overlay's private state (origin, impure, redirect, metacopy, nlink,
// whiteout markers…, in either namespace) describes one upperdir on one
// host and would even change how overlay reads a snapshot made from the
// layer; security.selinux is the host's label, re-assigned on every host.
// Diff leaves these out and Apply refuses to write them from a tar, so a
// layer cannot smuggle overlay redirects or metacopy into a snapshot.
func droppedXattr(name string) bool {
	return strings.HasPrefix(name, overlayPrefixTrusted) ||
		strings.HasPrefix(name, overlayPrefixUser) ||
		name == xattrSELinux
}

// isOverlayWhiteoutXattr reports whether name marks a regular file as an
// overlay whiteout (the xattr form, Linux ≥ 6.7).
func isOverlayWhiteoutXattr(name string) bool {
	return name == overlayPrefixTrusted+"whiteout" || name == overlayPrefixUser+"whiteout"
}

// isOverlayOpaqueXattr reports whether name=value marks a directory opaque.
// The value "x" only says the directory holds xattr whiteouts; it is not
// opaque.
func isOverlayOpaqueXattr(name, value string) bool {
	return (name == overlayPrefixTrusted+"opaque" || name == overlayPrefixUser+"opaque") && value == "y"
}

// cleanName turns a tar entry name into a clean slash-separated path
// relative to the root: "./a//b/" → "a/b", "/etc/x" → "etc/x" (absolute
// names are read relative to the root, as Docker and containerd do). The
// root itself is ".". A name that climbs out of the root lexically ("..",
// "../x", "a/../../x") is ErrUnsafePath: honest tools never write one.
func cleanName(name string) (string, error) {
	p := path.Clean(strings.TrimLeft(name, "/"))
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("entry %q: %w", name, ErrUnsafePath)
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "", fmt.Errorf("entry %q: NUL in name: %w", name, ErrUnsafePath)
	}
	return p, nil
}

// whiteoutKind says what an entry name means.
type whiteoutKind int

const (
	notWhiteout    whiteoutKind = iota
	whiteoutFile                // ".wh.<name>": delete dir/<name>
	whiteoutOpaque              // ".wh..wh..opq": hide dir's lower children
	whiteoutMeta                // ".wh..wh.*" (aufs metadata such as ".wh..wh.plnk"): skipped
)

// parseWhiteout splits a clean entry path into its directory ("." for the
// root) and base name and decodes the OCI whiteout forms. For a whiteout,
// base is the name being deleted; for an opaque marker it is empty. Bases
// that could not name a sibling (".", "..", "") are
// errors. Other ".wh..wh." names are aufs bookkeeping that old Docker
// layers carry; like Docker, readers skip them.
func parseWhiteout(p string) (dir, base string, kind whiteoutKind, err error) {
	dir, base = splitPath(p)
	switch {
	case base == opaqueMarker:
		return dir, "", whiteoutOpaque, nil
	case strings.HasPrefix(base, whiteoutPrefix+whiteoutPrefix):
		return dir, base, whiteoutMeta, nil
	case strings.HasPrefix(base, whiteoutPrefix):
		target := base[len(whiteoutPrefix):]
		if target == "" || target == "." || target == ".." {
			return "", "", 0, fmt.Errorf("whiteout %q: invalid name: %w", p, ErrUnsafePath)
		}
		return dir, target, whiteoutFile, nil
	}
	return dir, base, notWhiteout, nil
}

// splitPath splits a clean relative path into its directory ("." for the
// root) and base name.
func splitPath(p string) (dir, base string) {
	dir, base = path.Split(p)
	if dir = strings.TrimSuffix(dir, "/"); dir == "" {
		dir = "."
	}
	return dir, base
}

// joinPath joins a clean relative directory ("." for the root) and a name.
func joinPath(dir, name string) string {
	if dir == "." || dir == "" {
		return name
	}
	return dir + "/" + name
}
