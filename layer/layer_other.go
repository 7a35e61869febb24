//go:build !linux

package layer

import (
	"context"
	"fmt"
	"io"
)

// Diff needs Linux (lstat details, xattrs, overlay whiteouts); elsewhere it
// returns ErrUnsupported.
func Diff(ctx context.Context, dir string, w io.Writer, opts DiffOptions) (Descriptor, error) {
	return Descriptor{}, fmt.Errorf("diff %s: %w", dir, ErrUnsupported)
}

// Apply needs Linux (openat2 with RESOLVE_IN_ROOT); elsewhere it returns
// ErrUnsupported.
func Apply(ctx context.Context, root string, r io.Reader, opts ApplyOptions) (Descriptor, error) {
	return Descriptor{}, fmt.Errorf("apply layer to %s: %w", root, ErrUnsupported)
}
