//go:build !linux

package exec

import (
	"context"
	"fmt"
	"os"
)

// Run needs Linux namespaces and overlayfs; elsewhere it returns
// [ErrUnsupported].
func Run(ctx context.Context, s Spec) error { return ErrUnsupported }

// WithRoot needs Linux mount namespaces and overlayfs; elsewhere it returns
// [ErrUnsupported] without calling fn.
func WithRoot(ctx context.Context, r RootSpec, fn func(merged string) error) error {
	return ErrUnsupported
}

// LookupUser needs openat2; elsewhere it returns [ErrUnsupported].
func LookupUser(root, user string) (User, error) { return User{}, ErrUnsupported }

// Init cannot start a sandbox here: it says so and exits.
func Init() {
	fmt.Fprintf(os.Stderr, "minibuild: %s: %v\n", initArg, ErrUnsupported)
	os.Exit(2)
}

// Runner needs Linux namespaces and overlayfs; elsewhere its Run returns
// [ErrUnsupported].
type Runner struct{}

// NewRunner returns a Runner whose Run returns [ErrUnsupported].
func NewRunner() *Runner { return &Runner{} }

// Run returns [ErrUnsupported].
func (r *Runner) Run(ctx context.Context, s Spec) error { return ErrUnsupported }

// Close does nothing and returns nil.
func (r *Runner) Close() error { return nil }

func stubLayerFits(dir string) bool { return false }
