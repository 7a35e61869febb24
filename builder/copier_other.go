//go:build !linux

package builder

import (
	"context"
	"fmt"
)

// Copy performs COPY/ADD steps into root. It needs Linux (openat2,
// RESOLVE_IN_ROOT); elsewhere it returns [ErrUnsupported].
func Copy(ctx context.Context, root string, reqs ...CopyRequest) error {
	return fmt.Errorf("copy into %s: %w", root, ErrUnsupported)
}

// Mkdir performs a WORKDIR step. It needs Linux; elsewhere it returns
// [ErrUnsupported].
func Mkdir(ctx context.Context, root string, op *WorkdirOp, ids IDLookup) error {
	return fmt.Errorf("create working directory %s: %w", op.Path, ErrUnsupported)
}
