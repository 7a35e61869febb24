package oci

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// startBackground runs the cleanup goroutine: reclaim the leftovers of dead
// processes once, then empty trash/ whenever something is put there. Close
// cancels it and waits; a deletion cut short is finished by a later Open.
func (s *Store) startBackground() {
	ctx, cancel := context.WithCancel(context.Background())
	s.bgCancel = cancel
	s.bgDone = make(chan struct{})
	s.kick = make(chan struct{}, 1)
	s.reclaimed = make(chan struct{})
	go func() {
		defer close(s.bgDone)
		s.reclaimStale(ctx)
		close(s.reclaimed)
		for {
			s.emptyTrash(ctx)
			select {
			case <-ctx.Done():
				return
			case <-s.kick:
			}
		}
	}()
}

// kickTrash asks the background goroutine to empty trash/ again.
func (s *Store) kickTrash() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// trashName is a fresh path in trash/ for an entry called base.
func (s *Store) trashName(base string) string {
	return filepath.Join(s.root, trashDir, base+"-"+randomHex(4))
}

// reclaimStale moves to trash/ every entry of ingest/ and tmp/ whose flock
// no process holds: their owners died. Live owners hold their lock from
// creation to removal (see createLocked), so a successful try-lock proves
// the entry is abandoned.
func (s *Store) reclaimStale(ctx context.Context) {
	for _, dir := range []string{ingestDir, tmpDir} {
		p := filepath.Join(s.root, dir)
		entries, err := os.ReadDir(p)
		if err != nil {
			s.log.Warn("list stale entries", "dir", p, "err", err)
			continue
		}
		for _, e := range entries {
			if ctx.Err() != nil {
				return
			}
			s.reclaim(filepath.Join(p, e.Name()))
		}
	}
}

func (s *Store) reclaim(path string) {
	f, err := os.Open(path)
	if err != nil {
		return // gone already, or not ours to read
	}
	defer f.Close()
	if ok, err := tryLock(f, lockExclusive); err != nil || !ok {
		return
	}
	if err := os.Rename(path, s.trashName(filepath.Base(path))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("reclaim stale entry", "path", path, "err", err)
		return
	}
	s.log.Debug("reclaimed stale entry", "path", path)
}

// emptyTrash deletes everything in trash/. Several processes may empty it at
// once; entries that vanish underneath are not errors.
func (s *Store) emptyTrash(ctx context.Context) {
	p := filepath.Join(s.root, trashDir)
	entries, err := os.ReadDir(p)
	if err != nil {
		s.log.Warn("list trash", "dir", p, "err", err)
		return
	}
	for _, e := range entries {
		if ctx.Err() != nil {
			return
		}
		if err := removeTree(ctx, filepath.Join(p, e.Name())); err != nil && ctx.Err() == nil {
			s.log.Warn("empty trash", "path", filepath.Join(p, e.Name()), "err", err)
		}
	}
}

// removeTree is os.RemoveAll that stops when ctx ends, never follows
// symlinks, and makes directories writable first (overlay work dirs and
// read-only trees are common in tmp/ and snapshots).
func removeTree(ctx context.Context, path string) error {
	err := os.Remove(path)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	fi, lerr := os.Lstat(path)
	if errors.Is(lerr, fs.ErrNotExist) {
		return nil
	}
	if lerr != nil || !fi.IsDir() {
		return err
	}
	if fi.Mode().Perm()&0o700 != 0o700 {
		if err := os.Chmod(path, fi.Mode().Perm()|0o700); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := removeTree(ctx, filepath.Join(path, e.Name())); err != nil {
			return err
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
