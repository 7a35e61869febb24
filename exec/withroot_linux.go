package exec

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// WithRoot mounts r at a fresh directory, calls fn with its path, and
// unmounts it: the in-process counterpart of [Run] for steps such as COPY
// that the builder does itself.
//
// The mount exists only in a private mount namespace of one OS thread: fn
// runs on a goroutine locked to that thread, which unshared its mount
// namespace and made its mounts private, so the mount never shows on the
// host, and the thread ends (taking the namespace with it) instead of
// returning to Go's pool. fn must therefore do all its filesystem work on
// the goroutine that calls it: another goroutine, even one fn starts and
// waits for, sees the host's namespace, where merged is an empty directory.
// fn must also close every file it opened below merged before it returns.
//
// A panic in fn is raised again in the caller's goroutine.
//
// ctx is checked before mounting and before calling fn; fn is not
// interrupted and should watch the same ctx itself. After WithRoot
// returns, Work is empty and Upper holds fn's changes. WithRoot does not
// guarantee anything about paths fn resolves: resolve untrusted paths
// inside merged as in a chroot (openat2 with RESOLVE_IN_ROOT).
func WithRoot(ctx context.Context, r RootSpec, fn func(merged string) error) error {
	if err := r.validate(); err != nil {
		return fmt.Errorf("mount root: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mount root: %w", err)
	}
	err := prepareMountpoint(r)
	if err == nil {
		err = onPrivateThread(func() error { return withMountedRoot(ctx, r, fn) })
	}
	if cerr := clearDir(r.Work); cerr != nil {
		return errors.Join(err, cerr)
	}
	return err
}

func withMountedRoot(ctx context.Context, r RootSpec, fn func(string) error) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	merged := r.merged()
	if err := mountAt(r.Mount(), merged, nil); err != nil {
		return err
	}
	err := ctx.Err()
	if err != nil {
		err = fmt.Errorf("mount root: %w", err)
	} else {
		err = fn(merged)
	}
	// Detach: a file fn left open must not turn into an error here; the
	// mount then lives until it is closed, in this namespace only.
	if uerr := unix.Unmount(merged, unix.MNT_DETACH); uerr != nil {
		return errors.Join(err, fmt.Errorf("unmount root: %w", uerr))
	}
	return err
}

// onPrivateThread runs fn on a goroutine locked to an OS thread whose
// mount namespace it first unshares, and lets that thread exit afterwards
// (a goroutine that ends while locked takes its thread down with it).
//
// The main thread is avoided: Go never ends it (it parks it instead), and
// /proc/self describes the process through it, so a main thread left in a
// private namespace would make /proc/self/mountinfo lie to everyone. If
// the goroutine lands there, it keeps the main thread busy while a second
// goroutine, which then cannot be scheduled on it, does the work.
func onPrivateThread(fn func() error) error {
	r := runPrivate(fn)
	if r.panicked {
		panic(r.panicVal)
	}
	return r.err
}

// threadResult is how fn ended on its thread.
type threadResult struct {
	err      error
	panicked bool
	panicVal any
}

func runPrivate(fn func() error) threadResult {
	done := make(chan threadResult, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			r := runPrivate(fn)
			runtime.UnlockOSThread()
			done <- r
			return
		}
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			runtime.UnlockOSThread() // unchanged: the thread may be reused
			done <- threadResult{err: fmt.Errorf("unshare mount namespace: %w", err)}
			return
		}
		// From here on the thread is in its own namespace: no unlock.
		r := threadResult{panicked: true}
		defer func() {
			if r.panicked {
				r.panicVal = recover()
			}
			done <- r
		}()
		r.err = fn()
		r.panicked = false
	}()
	return <-done
}
