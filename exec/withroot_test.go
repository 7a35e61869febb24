//go:build linux

package exec_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"minibuild/exec"
	"minibuild/exec/exectest"
	"minibuild/internal/testenv"

	"golang.org/x/sys/unix"
)

func TestWithRootWritesLandInUpper(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	lower := t.TempDir()
	exectest.WriteFiles(t, lower, map[string]string{"app/old": "old", "app/gone": "x"})
	r := exectest.NewRoot(t, lower)
	err := exec.WithRoot(context.Background(), r, func(merged string) error {
		if b, err := os.ReadFile(filepath.Join(merged, "app/old")); err != nil || string(b) != "old" {
			t.Errorf("read app/old in merged root = %q, %v; want the lower's file", b, err)
		}
		if err := os.WriteFile(filepath.Join(merged, "app/new"), []byte("new"), 0o644); err != nil {
			return err
		}
		return os.Remove(filepath.Join(merged, "app/gone"))
	})
	if err != nil {
		t.Fatalf("WithRoot = %v", err)
	}
	if got, want := exectest.Tree(t, r.Upper), []string{"app/", "app/gone", "app/new"}; !slices.Equal(got, want) {
		t.Errorf("upper = %q, want %q (gone as a whiteout)", got, want)
	}
	if got, want := exectest.Tree(t, lower), []string{"app/", "app/gone", "app/old"}; !slices.Equal(got, want) {
		t.Errorf("lower = %q, want it unchanged %q", got, want)
	}
	if got := exectest.Tree(t, r.Work); got != nil {
		t.Errorf("work = %q, want empty", got)
	}
}

func TestWithRootScratch(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	r := exectest.NewRoot(t) // no lower: FROM scratch
	err := exec.WithRoot(context.Background(), r, func(merged string) error {
		return os.WriteFile(filepath.Join(merged, "f"), nil, 0o644)
	})
	if err != nil {
		t.Fatalf("WithRoot = %v", err)
	}
	if got := exectest.Tree(t, r.Upper); !slices.Equal(got, []string{"f"}) {
		t.Errorf("upper = %q, want [f]", got)
	}
}

// TestWithRootMountIsPrivate checks that the mount never shows in the
// process's namespace, during fn (seen from fn's own thread and from
// another goroutine) or after, while fn's thread does see it.
func TestWithRootMountIsPrivate(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	r := exectest.NewRoot(t, t.TempDir())
	var merged string
	err := exec.WithRoot(context.Background(), r, func(m string) error {
		merged = m
		if got := mountsMentioning(t, "/proc/thread-self/mountinfo", m); len(got) != 1 {
			t.Errorf("fn's thread mountinfo has %q for %s, want one mount", got, m)
		}
		if got := mountsMentioning(t, "/proc/self/mountinfo", m); got != nil {
			t.Errorf("process mountinfo during fn has %q, want nothing", got)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			if got := mountsMentioning(t, "/proc/thread-self/mountinfo", m); got != nil {
				t.Errorf("another goroutine sees %q, want nothing", got)
			}
		})
		wg.Wait()
		return nil
	})
	if err != nil {
		t.Fatalf("WithRoot = %v", err)
	}
	for _, f := range []string{"/proc/self/mountinfo", "/proc/thread-self/mountinfo"} {
		if got := mountsMentioning(t, f, merged); got != nil {
			t.Errorf("%s after WithRoot has %q, want nothing", f, got)
		}
	}
}

// TestWithRootSymlinkResolvesInRoot checks that an absolute symlink in a
// lower, resolved as in a chroot, leads into the merged root and the
// write lands in the upper directory, not on the host.
func TestWithRootSymlinkResolvesInRoot(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	hostDir := t.TempDir()
	lower := t.TempDir()
	exectest.WriteFiles(t, lower, map[string]string{"dest": "->" + hostDir, hostDir[1:] + "/": ""})
	r := exectest.NewRoot(t, lower)
	err := exec.WithRoot(context.Background(), r, func(merged string) error {
		root, err := unix.Open(merged, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(root)
		fd, err := unix.Openat2(root, "dest/file", &unix.OpenHow{
			Flags:   unix.O_CREAT | unix.O_WRONLY | unix.O_CLOEXEC,
			Mode:    0o644,
			Resolve: unix.RESOLVE_IN_ROOT,
		})
		if err != nil {
			return err
		}
		return unix.Close(fd)
	})
	if err != nil {
		t.Fatalf("WithRoot = %v", err)
	}
	if got := exectest.Tree(t, hostDir); got != nil {
		t.Errorf("host directory %s = %q, want untouched", hostDir, got)
	}
	if _, err := os.Stat(filepath.Join(r.Upper, hostDir, "file")); err != nil {
		t.Errorf("file in upper: %v, want it there", err)
	}
}

func TestWithRootErrors(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	boom := errors.New("boom")
	r := exectest.NewRoot(t, t.TempDir())
	if err := exec.WithRoot(context.Background(), r, func(string) error { return boom }); err != boom {
		t.Errorf("WithRoot(fn failing) = %v, want fn's error itself", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	err := exec.WithRoot(ctx, r, func(string) error { called = true; return nil })
	if !errors.Is(err, context.Canceled) || called {
		t.Errorf("WithRoot(canceled) = %v, fn called %v; want context.Canceled, not called", err, called)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	err = exec.WithRoot(context.Background(), exectest.NewRoot(t, t.TempDir(), missing), func(string) error { called = true; return nil })
	if !errors.Is(err, os.ErrNotExist) || called {
		t.Errorf("WithRoot(missing lower) = %v, fn called %v; want ErrNotExist, not called", err, called)
	}
}

// TestWithRootConcurrent runs many mounts at once, as parallel COPY steps
// do, on the few threads of a 2-core machine.
func TestWithRootConcurrent(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	lower := t.TempDir()
	var wg sync.WaitGroup
	for range 16 {
		r := exectest.NewRoot(t, lower)
		wg.Go(func() {
			err := exec.WithRoot(context.Background(), r, func(m string) error {
				return os.WriteFile(filepath.Join(m, "f"), nil, 0o644)
			})
			if err != nil {
				t.Errorf("WithRoot = %v", err)
			}
		})
	}
	wg.Wait()
	if got := mountsMentioning(t, "/proc/self/mountinfo", lower); got != nil {
		t.Errorf("mountinfo after = %q, want nothing", got)
	}
}

func TestWithRootPanic(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	r := exectest.NewRoot(t, t.TempDir())
	defer func() {
		if v := recover(); v != "boom" {
			t.Errorf("recover() = %v, want fn's panic value boom", v)
		}
	}()
	exec.WithRoot(context.Background(), r, func(string) error { panic("boom") })
	t.Error("WithRoot returned, want it to panic")
}
