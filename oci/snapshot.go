package oci

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func (s *Store) snapshotPath(diffID v1.Hash) string {
	return filepath.Join(s.root, snapshotsDir, diffID.Hex)
}

// Snapshot returns the directory holding the layer diffID unpacked (overlay
// form), and whether it exists. The store manages the directory, not its
// contents: callers treat it as read-only.
func (s *Store) Snapshot(diffID v1.Hash) (string, bool) {
	if checkHash(diffID) != nil {
		return "", false
	}
	p := s.snapshotPath(diffID)
	fi, err := os.Lstat(p)
	return p, err == nil && fi.IsDir()
}

// CommitSnapshot makes dir, a fully written directory made with
// [Store.TempDir], the snapshot of diffID: it syncs dir's filesystem
// (syncfs), renames dir into snapshots/ and fsyncs snapshots/. If the
// snapshot exists already (another build made it first), dir is moved to
// trash/ and the existing one is returned. Either way dir is gone after a
// successful call.
func (s *Store) CommitSnapshot(ctx context.Context, dir string, diffID v1.Hash) (string, error) {
	if err := checkHash(diffID); err != nil {
		return "", fmt.Errorf("commit snapshot: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("commit snapshot %s: %w", diffID, err)
	}
	if err := s.checkTempDir(dir); err != nil {
		return "", fmt.Errorf("commit snapshot %s: %w", diffID, err)
	}
	if err := syncFS(dir); err != nil {
		return "", fmt.Errorf("commit snapshot %s: %w", diffID, err)
	}
	dst := s.snapshotPath(diffID)
	err := renameNoReplace(dir, dst)
	if errors.Is(err, fs.ErrExist) {
		if err := os.Rename(dir, s.trashName("snapshot")); err != nil {
			return "", fmt.Errorf("commit snapshot %s: discard duplicate: %w", diffID, err)
		}
		s.kickTrash()
		return dst, nil
	}
	if err != nil {
		return "", fmt.Errorf("commit snapshot %s: %w", diffID, err)
	}
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return "", fmt.Errorf("commit snapshot %s: %w", diffID, err)
	}
	return dst, nil
}

// checkTempDir checks that dir is a directory under <root>/tmp/, the only
// place a snapshot may come from (same filesystem, owned by a live process).
func (s *Store) checkTempDir(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(filepath.Join(s.root, tmpDir), abs)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("%s: %w: not a directory from TempDir", dir, ErrInvalid)
	}
	fi, err := os.Lstat(abs)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: %w: not a directory", dir, ErrInvalid)
	}
	return nil
}

// RemoveSnapshot moves the snapshot of diffID to trash/, where the
// background goroutine deletes it. It is for callers that know no mount
// uses it (a snapshot found corrupt); [Store.GC] is the safe way to drop
// unused ones. A missing snapshot is [ErrNotFound].
func (s *Store) RemoveSnapshot(diffID v1.Hash) error {
	if err := checkHash(diffID); err != nil {
		return fmt.Errorf("remove snapshot: %w", err)
	}
	err := os.Rename(s.snapshotPath(diffID), s.trashName("snapshot"))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove snapshot %s: %w", diffID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("remove snapshot %s: %w", diffID, err)
	}
	s.kickTrash()
	if err := syncDir(filepath.Join(s.root, snapshotsDir)); err != nil {
		return fmt.Errorf("remove snapshot %s: %w", diffID, err)
	}
	return nil
}
