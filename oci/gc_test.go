package oci

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"minibuild/oci/ocitest"
)

func TestGC(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	kept := putTestImage(t, s, map[string]string{"kept": "1"})
	gone := putTestImage(t, s, map[string]string{"gone": "1"})
	rooted := putTestImage(t, s, map[string]string{"rooted": "1"})
	if err := s.Tag(ctx, "kept", kept); err != nil {
		t.Fatal(err)
	}
	keptCfg := mustConfig(t, s, kept.Digest)
	rootedLayer := mustManifest(t, s, rooted.Digest).Layers[0].Digest
	goneDiffID := mustConfig(t, s, gone.Digest).RootFS.DiffIDs[0]
	mkSnapshot(t, s, keptCfg.RootFS.DiffIDs[0])
	mkSnapshot(t, s, goneDiffID)
	cacheDiffID := ocitest.Digest([]byte("cache record layer"))
	mkSnapshot(t, s, cacheDiffID)

	res, err := s.GC(ctx, []v1.Hash{rootedLayer, cacheDiffID})
	if err != nil {
		t.Fatalf("GC = %v", err)
	}
	if !s.HasBlob(kept.Digest) || !s.HasBlob(rootedLayer) {
		t.Errorf("GC removed a kept blob")
	}
	if s.HasBlob(gone.Digest) || s.HasBlob(rooted.Digest) {
		t.Errorf("GC kept unreachable manifests (a root keeps only itself)")
	}
	if _, ok := s.Snapshot(keptCfg.RootFS.DiffIDs[0]); !ok {
		t.Errorf("GC removed the snapshot of a tagged image's layer")
	}
	if _, ok := s.Snapshot(cacheDiffID); !ok {
		t.Errorf("GC removed a snapshot passed as a root")
	}
	if _, ok := s.Snapshot(goneDiffID); ok {
		t.Errorf("GC kept an unreachable snapshot")
	}
	if len(res.Snapshots) != 1 || res.Bytes <= 0 || len(res.Blobs) != 5 {
		t.Errorf("GC result = %d blobs, %d bytes, %d snapshots; want 5, >0, 1", len(res.Blobs), res.Bytes, len(res.Snapshots))
	}
	r, err := s.Fsck(ctx)
	if err != nil || !r.OK() {
		t.Errorf("Fsck after GC = %+v, %v", r, err)
	}
}

func TestGCRefusesWhenUnsure(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	d := putTestImage(t, s, map[string]string{"a": "1"})
	if err := s.Tag(ctx, "a", d); err != nil {
		t.Fatal(err)
	}
	other := putTestImage(t, s, map[string]string{"b": "1"})
	cfg := mustManifest(t, s, d.Digest).Config.Digest
	if err := os.Remove(s.blobPath(cfg)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(ctx, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("GC with a missing config = %v, want ErrNotFound", err)
	}
	if !s.HasBlob(other.Digest) {
		t.Errorf("GC deleted blobs although it could not read the graph")
	}
}

func TestGCWaitsForOtherStores(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "root")
	s := openAt(t, root)
	openAt(t, root) // another "process" holding the store open
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.GC(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("GC while another store is open = %v, want it to wait until ctx ends", err)
	}
	// The shared lock is back: the store still works.
	putTestImage(t, s, map[string]string{"a": "1"})
}

func mustConfig(t *testing.T, s *Store, h v1.Hash) *v1.ConfigFile {
	t.Helper()
	img, err := s.Image(h)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func mkSnapshot(t *testing.T, s *Store, diffID v1.Hash) string {
	t.Helper()
	dir, err := s.TempDir("snap")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), []byte(diffID.Hex), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := s.CommitSnapshot(context.Background(), dir, diffID)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
