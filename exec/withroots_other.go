//go:build !linux

package exec

import "context"

// WithRoots needs Linux mount namespaces and overlayfs; elsewhere it
// returns [ErrUnsupported] without calling fn.
func WithRoots(ctx context.Context, roots []RootSpec, fn func(merged []string) error) error {
	return ErrUnsupported
}
