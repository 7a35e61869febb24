package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// newStore opens a store in a fresh temp dir, closed (and checked) at the
// end of the test.
func newStore(t *testing.T) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "root"))
}

func openAt(t *testing.T, root string) *Store {
	t.Helper()
	s, err := Open(root)
	if err != nil {
		t.Fatalf("Open(%s) = %v", root, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return s
}

func TestOpenCreatesTree(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	fi, err := os.Stat(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("root mode = %v, want 0700", got)
	}
	for _, p := range []string{"oci/oci-layout", "oci/index.json", "oci/blobs/sha256", "snapshots", "ingest", "tmp", "trash", "lock"} {
		if _, err := os.Stat(filepath.Join(s.Root(), p)); err != nil {
			t.Errorf("store tree: %v", err)
		}
	}
	var idx v1.IndexManifest
	b, _ := os.ReadFile(filepath.Join(s.Root(), "oci/index.json"))
	if err := json.Unmarshal(b, &idx); err != nil || idx.SchemaVersion != 2 || idx.Manifests == nil {
		t.Errorf("index.json = %s (%v), want an empty OCI index with \"manifests\": []", b, err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "cache")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open created cache/ (not the store's): %v", err)
	}
}

func TestOpenTwiceSharesTheStore(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "root")
	a := openAt(t, root)
	b := openAt(t, root) // a shared lock does not block another
	if a.Root() != b.Root() {
		t.Errorf("roots differ: %s, %s", a.Root(), b.Root())
	}
}

func TestOpenRefusesNewerLayout(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "oci"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "oci/oci-layout"), []byte(`{"imageLayoutVersion":"2.0.0"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(root); !errors.Is(err, ErrUnsupported) {
		if s != nil {
			s.Close()
		}
		t.Errorf("Open(layout 2.0.0) = %v, want ErrUnsupported", err)
	}
}

func TestTempDirLifecycle(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "root")
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := s.TempDir("upper")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A read-only subtree, like an overlay work dir, must not stop removal.
	if err := os.Mkdir(filepath.Join(dir, "work"), 0o000); err != nil {
		t.Fatal(err)
	}
	// Another store on the root must see the dir as live and leave it.
	other := openAt(t, root)
	other.reclaimStale(context.Background())
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("live temp dir reclaimed by another store: %v", err)
	}
	if _, err := s.TempDir("a/b"); !errors.Is(err, ErrInvalid) {
		t.Errorf("TempDir(\"a/b\") = %v, want ErrInvalid", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("process dir after Close: %v, want it gone", err)
	}
	if _, err := s.TempDir("x"); err == nil {
		t.Errorf("TempDir after Close succeeded")
	}
}

func TestStaleEntriesReclaimed(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "root")
	s := openAt(t, root)
	// What a killed process leaves: a tmp dir and an ingest file nobody locks.
	dead := filepath.Join(root, "tmp", "12345-dead")
	if err := os.MkdirAll(filepath.Join(dead, "upper", "d"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "ingest", "blob-dead"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	live, err := s.NewIngest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()

	s.reclaimStale(context.Background())
	s.emptyTrash(context.Background())
	for _, p := range []string{dead, filepath.Join(root, "ingest", "blob-dead")} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale %s: %v, want it gone", p, err)
		}
	}
	if _, err := os.Stat(live.f.Name()); err != nil {
		t.Errorf("live ingest file reclaimed: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "trash"))
	if len(entries) != 0 {
		t.Errorf("trash/ holds %d entries after emptying, want 0", len(entries))
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
