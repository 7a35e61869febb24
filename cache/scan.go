package cache

import (
	"errors"
	"strings"
)

// ErrUnsupported: the operation needs Linux.
var ErrUnsupported = errors.New("unsupported on this platform")

// ErrChanged: a file kept changing while it was being hashed.
var ErrChanged = errors.New("file changed while being hashed")

// ScanOptions tunes [Scan]. The zero value lists everything, hashes every
// regular file and uses GOMAXPROCS workers.
type ScanOptions struct {
	// Select decides for each entry (rel: slash-separated path relative to
	// the scanned directory; isDir: a directory, not a symlink to one)
	// whether it is listed and, for a directory, whether the scan goes
	// into it. The builder passes its .dockerignore matcher: an excluded
	// directory with re-included children is (false, true). Nil selects
	// everything. It is called from several goroutines at once.
	Select func(rel string, isDir bool) (include, descend bool)
	// Cache memoizes content digests; nil hashes every file.
	Cache *StatCache
	// Jobs bounds the goroutines that list, stat and hash; 0 means
	// GOMAXPROCS.
	Jobs int
}

// keyedXattr reports whether an xattr is part of a file's input digest:
// every one but the host-only ones a layer drops (docs/layers-format.md):
// security.selinux (a label of the build host) and overlay's own
// trusted.overlay.* / user.overlay.*.
func keyedXattr(name string) bool {
	return name != "security.selinux" &&
		!strings.HasPrefix(name, "trusted.overlay.") &&
		!strings.HasPrefix(name, "user.overlay.")
}
