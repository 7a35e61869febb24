package oci

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// GCResult is what [Store.GC] removed.
type GCResult struct {
	Blobs     []v1.Hash // blobs deleted
	Bytes     int64     // their total size
	Snapshots []v1.Hash // snapshots moved to trash/ (by diff ID)
}

// GC deletes every blob and snapshot that nothing keeps: blobs not
// reachable from index.json, snapshots whose diff ID no reachable config
// lists. roots keeps more: each digest keeps the blob and the snapshot of
// that name (cache records pass their layer digests and diff IDs); a root is
// not followed, so a manifest root does not keep its layers.
//
// GC holds the store lock exclusively while it runs: it waits (until ctx
// ends) for every other process that has the store open, and other
// processes wait in Open until it is done. It must not run concurrently
// with other calls on the same Store. If any reachable manifest, index or
// config cannot be read, GC deletes nothing and returns the error.
func (s *Store) GC(ctx context.Context, roots []v1.Hash) (res GCResult, err error) {
	release, err := s.exclusive(ctx)
	if err != nil {
		return res, fmt.Errorf("gc: %w", err)
	}
	defer func() { err = errors.Join(err, release()) }()

	keep, keepSnap, err := s.reachable(ctx, roots)
	if err != nil {
		return res, fmt.Errorf("gc: %w", err)
	}
	entries, err := os.ReadDir(s.blobsDir())
	if err != nil {
		return res, fmt.Errorf("gc: %w", err)
	}
	for _, e := range entries {
		h := v1.Hash{Algorithm: "sha256", Hex: e.Name()}
		if !isHex64(e.Name()) || keep[h] {
			continue // fsck reports strays; GC only removes what it understands
		}
		info, _ := e.Info()
		if err := os.Remove(filepath.Join(s.blobsDir(), e.Name())); err != nil {
			return res, fmt.Errorf("gc: remove blob %s: %w", h, err)
		}
		res.Blobs = append(res.Blobs, h)
		if info != nil {
			res.Bytes += info.Size()
		}
	}
	if err := syncDir(s.blobsDir()); err != nil {
		return res, fmt.Errorf("gc: %w", err)
	}
	if err := s.pruneSources(ctx, keep); err != nil {
		return res, fmt.Errorf("gc: %w", err)
	}
	if res.Snapshots, err = s.gcSnapshots(keepSnap); err != nil {
		return res, fmt.Errorf("gc: %w", err)
	}
	return res, nil
}

// reachable is the set of blobs reachable from index.json plus roots, and
// the set of snapshot names (diff ID hex) to keep.
func (s *Store) reachable(ctx context.Context, roots []v1.Hash) (map[v1.Hash]bool, map[string]bool, error) {
	keep, keepSnap := map[v1.Hash]bool{}, map[string]bool{}
	for _, h := range roots {
		keep[h] = true
		keepSnap[h.Hex] = true
	}
	idx, err := s.readIndex()
	if err != nil {
		return nil, nil, err
	}
	for _, d := range idx.Manifests {
		err := walkGraph(ctx, d, s.readVerified, func(b v1.Descriptor, kind blobKind, _ []byte, m *v1.Manifest) error {
			keep[b.Digest] = true
			if kind != kindConfig {
				return nil
			}
			raw, err := s.readVerified(b)
			if err != nil {
				return err
			}
			cfg, err := parseConfig(raw, m)
			if err != nil {
				return err
			}
			for _, id := range cfg.RootFS.DiffIDs {
				keepSnap[id.Hex] = true
			}
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("image %s: %w", d.Digest, err)
		}
	}
	return keep, keepSnap, nil
}

func (s *Store) gcSnapshots(keep map[string]bool) ([]v1.Hash, error) {
	dir := filepath.Join(s.root, snapshotsDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var removed []v1.Hash
	for _, e := range entries {
		if !isHex64(e.Name()) || keep[e.Name()] {
			continue
		}
		if err := os.Rename(filepath.Join(dir, e.Name()), s.trashName("snapshot")); err != nil {
			return removed, fmt.Errorf("remove snapshot %s: %w", e.Name(), err)
		}
		removed = append(removed, v1.Hash{Algorithm: "sha256", Hex: e.Name()})
	}
	if len(removed) > 0 {
		s.kickTrash()
		return removed, syncDir(dir)
	}
	return removed, nil
}

// exclusive turns the Store's shared lock into an exclusive one until the
// returned func turns it back. The shared lock is dropped first: two
// processes upgrading at once would otherwise wait for each other forever.
func (s *Store) exclusive(ctx context.Context) (func() error, error) {
	if err := unlock(s.lock); err != nil {
		return nil, err
	}
	back := func() error {
		return waitLock(context.Background(), s.lock, lockShared, s.log, s.lock.Name())
	}
	if err := waitLock(ctx, s.lock, lockExclusive, s.log, s.lock.Name()); err != nil {
		return nil, errors.Join(err, back())
	}
	return back, nil
}
