package oci

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// waitLock blocks until f holds the lock in mode or ctx ends. flock(2)
// cannot be interrupted from Go, so it retries with LOCK_NB and a capped
// backoff; the first miss is logged, so a user knows why a command waits.
func waitLock(ctx context.Context, f *os.File, mode lockMode, log *slog.Logger, what string) error {
	delay := 2 * time.Millisecond
	logged := false
	for {
		ok, err := tryLock(f, mode)
		if err != nil || ok {
			return err
		}
		if !logged {
			log.Info("waiting for another minibuild process", "lock", what)
			logged = true
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for %s: %w", what, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// createLocked creates a new file in dir (os.CreateTemp pattern) and holds
// an exclusive flock on it. The stale-entry cleaner of another process may
// lock and unlink a fresh file before its creator locks it, so the creator
// checks, once locked, that the path still names its file, and retries
// otherwise.
func createLocked(dir, pattern string) (*os.File, error) {
	for range 16 {
		f, err := os.CreateTemp(dir, pattern)
		if err != nil {
			return nil, err
		}
		ok, err := lockedAndLinked(f, f.Name())
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, err
		}
		if ok {
			return f, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("create locked file in %s: lost to cleanup 16 times", dir)
}

// mkdirLocked creates the directory dir/name and returns it open with an
// exclusive flock held (see createLocked for why it checks the path).
func mkdirLocked(dir, name string) (*os.File, error) {
	p := filepath.Join(dir, name)
	if err := os.Mkdir(p, 0o700); err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	ok, err := lockedAndLinked(f, p)
	if err != nil || !ok {
		f.Close()
		if err == nil {
			err = fmt.Errorf("create %s: removed by a concurrent cleanup", p)
		}
		return nil, err
	}
	return f, nil
}

// lockedAndLinked locks f exclusively and reports whether path still names
// it. On false the lock is released.
func lockedAndLinked(f *os.File, path string) (bool, error) {
	ok, err := tryLock(f, lockExclusive)
	if err != nil || !ok {
		return false, err
	}
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	pi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) || (err == nil && !os.SameFile(fi, pi)) {
		return false, unlock(f)
	}
	return err == nil, err
}

// syncDir fsyncs a directory so the entries renamed into it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}
