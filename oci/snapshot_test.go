package oci

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"minibuild/oci/ocitest"
)

func TestCommitSnapshot(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	id := ocitest.Digest([]byte("layer"))
	if _, ok := s.Snapshot(id); ok {
		t.Fatalf("Snapshot before commit = ok")
	}
	p := mkSnapshot(t, s, id)
	got, ok := s.Snapshot(id)
	if !ok || got != p || filepath.Base(p) != id.Hex {
		t.Fatalf("Snapshot(%s) = %s, %v; want %s", id, got, ok, p)
	}
	// A second build that made the same snapshot: the first one wins, the
	// duplicate goes to trash.
	dup, err := s.TempDir("snap")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dup, "other"), []byte("x"), 0o644)
	if got, err := s.CommitSnapshot(ctx, dup, id); err != nil || got != p {
		t.Errorf("CommitSnapshot(duplicate) = %s, %v; want %s", got, err, p)
	}
	if _, err := os.Stat(dup); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("duplicate dir still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(p, "other")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("duplicate replaced the existing snapshot")
	}
	if err := s.RemoveSnapshot(id); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Snapshot(id); ok {
		t.Errorf("Snapshot after RemoveSnapshot = ok")
	}
	if err := s.RemoveSnapshot(id); !errors.Is(err, ErrNotFound) {
		t.Errorf("RemoveSnapshot(absent) = %v, want ErrNotFound", err)
	}
}

func TestCommitSnapshotOnlyFromTempDir(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	outside := t.TempDir()
	id := ocitest.Digest([]byte("layer"))
	if _, err := s.CommitSnapshot(context.Background(), outside, id); !errors.Is(err, ErrInvalid) {
		t.Errorf("CommitSnapshot(dir outside tmp/) = %v, want ErrInvalid", err)
	}
	if _, err := s.CommitSnapshot(context.Background(), filepath.Join(s.Root(), "tmp"), id); !errors.Is(err, ErrInvalid) {
		t.Errorf("CommitSnapshot(tmp/ itself) = %v, want ErrInvalid", err)
	}
}
