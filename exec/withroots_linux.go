package exec

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// WithRoots is [WithRoot] for several roots at once: each is mounted at a
// fresh directory of its own Work, all in the same private mount
// namespace of one OS thread, and fn gets their paths in the order of
// roots. The builder uses it for COPY --from, which reads one image's
// root while it writes into another's. The same rules as for WithRoot
// apply to fn (one goroutine, files closed before it returns); the roots
// must not share an Upper or a Work.
func WithRoots(ctx context.Context, roots []RootSpec, fn func(merged []string) error) error {
	for _, r := range roots {
		if err := r.validate(); err != nil {
			return fmt.Errorf("mount root: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mount root: %w", err)
	}
	var err error
	for _, r := range roots {
		if err = prepareMountpoint(r); err != nil {
			break
		}
	}
	if err == nil {
		err = onPrivateThread(func() error { return withMountedRoots(ctx, roots, fn) })
	}
	for _, r := range roots {
		if cerr := clearDir(r.Work); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}
	return err
}

func withMountedRoots(ctx context.Context, roots []RootSpec, fn func([]string) error) (err error) {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	var merged []string
	defer func() {
		// Detach in reverse order; see withMountedRoot for why detach.
		for i := len(merged) - 1; i >= 0; i-- {
			if uerr := unix.Unmount(merged[i], unix.MNT_DETACH); uerr != nil {
				err = errors.Join(err, fmt.Errorf("unmount root: %w", uerr))
			}
		}
	}()
	for _, r := range roots {
		if err := mountAt(r.Mount(), r.merged(), nil); err != nil {
			return err
		}
		merged = append(merged, r.merged())
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mount root: %w", err)
	}
	return fn(append([]string(nil), merged...))
}
