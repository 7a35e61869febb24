package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/singleflight"
	"golang.org/x/sys/unix"

	"minibuild/layer"
	"minibuild/oci"
)

// maxLowers is overlayfs's stack limit (OVL_MAX_STACK).
const maxLowers = 500

// locksDir holds the per-snapshot lock files under the store root,
// shared by every process using the store.
const locksDir = "locks"

// snapshotter provides the snapshots (unpacked layers, keyed by diff ID)
// that overlay mounts use as lowerdirs. A missing one is unpacked from
// its blob only when a mount needs it, once: concurrent requests in this
// process share one unpack (singleflight) and processes sharing the store
// take turns on a lock file, the second finding the first's snapshot.
type snapshotter struct {
	b     *Builder
	group singleflight.Group
}

func newSnapshotter(b *Builder) *snapshotter { return &snapshotter{b: b} }

// lowers returns the snapshot directories of chain, topmost first, as
// exec.RootSpec.Lower wants them, unpacking the missing ones. A layer that
// appears twice is kept only where it is topmost: the upper copy provides
// everything the lower one does and hides what it hides.
func (s *snapshotter) lowers(ctx context.Context, chain []chainLayer, v *vertex) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for i := len(chain) - 1; i >= 0; i-- {
		l := chain[i]
		if seen[l.diffID.Hex] {
			continue
		}
		seen[l.diffID.Hex] = true
		dir, err := s.ensure(ctx, l, v)
		if err != nil {
			return nil, err
		}
		out = append(out, dir)
	}
	if len(out) > maxLowers {
		return nil, fmt.Errorf("the image has %d distinct layers; overlayfs stacks at most %d (squash the base image)", len(out), maxLowers)
	}
	return out, nil
}

// ensure returns the snapshot of l, unpacking it if needed. The unpack
// runs under the context of the first caller; a waiter whose own context
// is still alive when that one was cancelled tries again.
func (s *snapshotter) ensure(ctx context.Context, l chainLayer, v *vertex) (string, error) {
	for {
		if dir, ok := s.b.store.Snapshot(l.diffID); ok {
			return dir, nil
		}
		dir, err, _ := s.group.Do(l.diffID.Hex, func() (any, error) { return s.unpack(ctx, l, v) })
		if err == nil {
			return dir.(string), nil
		}
		if ctx.Err() != nil || !isContextError(err) {
			return "", err
		}
	}
}

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// unpack makes the snapshot of l under its lock file.
func (s *snapshotter) unpack(ctx context.Context, l chainLayer, v *vertex) (string, error) {
	unlock, err := s.lock(ctx, l)
	if err != nil {
		return "", err
	}
	defer unlock()
	if dir, ok := s.b.store.Snapshot(l.diffID); ok {
		return dir, nil // another process made it while we waited
	}
	if v != nil {
		v.status("unpacking layer " + l.desc.Digest.String())
	}
	s.b.traced("apply")
	if err := s.b.store.FetchBlob(ctx, l.desc.Digest, oci.FetchOptions{}); err != nil {
		return "", fmt.Errorf("unpack layer %s: %w", l.desc.Digest, err)
	}
	tmp, err := s.b.store.TempDir("snapshot")
	if err != nil {
		return "", err
	}
	if err := s.apply(ctx, tmp, l); err != nil {
		return "", errors.Join(err, os.RemoveAll(tmp))
	}
	dir, err := s.b.store.CommitSnapshot(ctx, tmp, l.diffID)
	if err != nil {
		return "", errors.Join(err, os.RemoveAll(tmp))
	}
	return dir, nil
}

// apply unpacks l's blob into dir in overlay form, verifying both digests.
func (s *snapshotter) apply(ctx context.Context, dir string, l chainLayer) error {
	// A root filesystem's "/" is 0755; a layer rarely says so itself.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	rc, err := s.b.store.OpenBlob(l.desc.Digest)
	if err != nil {
		return fmt.Errorf("unpack layer %s: %w", l.desc.Digest, err)
	}
	defer rc.Close()
	_, err = layer.Apply(ctx, dir, rc, layer.ApplyOptions{Digest: l.desc.Digest, DiffID: l.diffID, Whiteout: layer.OverlayWhiteouts})
	if err != nil {
		return fmt.Errorf("unpack layer %s: %w", l.desc.Digest, err)
	}
	return nil
}

// lock takes the lock file of l's snapshot, waiting (as long as ctx lets
// it) while another process holds it. flock cannot be interrupted, so it
// polls with a capped backoff.
func (s *snapshotter) lock(ctx context.Context, l chainLayer) (func(), error) {
	dir := filepath.Join(s.b.store.Root(), locksDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock snapshot %s: %w", l.diffID, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "snapshot-"+l.diffID.Hex), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock snapshot %s: %w", l.diffID, err)
	}
	delay := time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing drops the lock
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock snapshot %s: %w", l.diffID, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock snapshot %s: %w", l.diffID, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}
