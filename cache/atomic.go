package cache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// durability says whether a write must survive a crash.
type durability int

const (
	// durable: fsync the file before the rename and the directory after.
	// For records and listings, which other files refer to.
	durable durability = iota
	// bestEffort: rename without fsync. For build logs and stat caches,
	// which are rewritten by every build and only accelerate or explain:
	// after a crash they may be old, or unreadable and then ignored, but
	// readers never see a part of a write. Saves two fsyncs on a no-op
	// build.
	bestEffort
)

// writeAtomic makes target hold data, all or nothing: a temp file in
// tmpDir (same filesystem) is written and renamed over target. Readers
// see the old file or the new one, never a part. When d is durable the
// temp file is fsynced before the rename and target's directory after
// it, and a missing parent directory created here is made durable too.
func writeAtomic(tmpDir, target string, data []byte, d durability) (err error) {
	dir := filepath.Dir(target)
	if err := ensureDir(dir); err != nil {
		return err
	}
	f, err := os.CreateTemp(tmpDir, filepath.Base(target)+".*")
	if err != nil {
		return fmt.Errorf("create temp file for %s: %w", target, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			err = errors.Join(err, ignoreNotExist(os.Remove(tmp)))
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if d == durable {
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("sync %s: %w", tmp, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, target); err != nil {
		return fmt.Errorf("rename into %s: %w", target, err)
	}
	if d == durable {
		return syncDir(dir)
	}
	return nil
}

// ensureDir creates dir (one level) if it is missing and makes the new
// entry durable by syncing its parent.
func ensureDir(dir string) error {
	err := os.Mkdir(dir, 0o700)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	return syncDir(filepath.Dir(dir))
}

// syncDir fsyncs a directory so renames and creations in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

func ignoreNotExist(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
