package oci

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestFsck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		damage  func(t *testing.T, s *Store, d v1.Descriptor, layer v1.Hash)
		problem string // substring of one reported problem; "" for none
	}{
		{"clean", func(*testing.T, *Store, v1.Descriptor, v1.Hash) {}, ""},
		{"corrupt layer", func(t *testing.T, s *Store, _ v1.Descriptor, layer v1.Hash) {
			os.WriteFile(s.blobPath(layer), []byte("garbage"), 0o600)
		}, "blob " + "LAYER"},
		{"missing layer", func(t *testing.T, s *Store, _ v1.Descriptor, layer v1.Hash) {
			os.Remove(s.blobPath(layer))
		}, "image docker.io/library/app:latest: manifest"},
		{"missing manifest", func(t *testing.T, s *Store, d v1.Descriptor, _ v1.Hash) {
			os.Remove(s.blobPath(d.Digest))
		}, "image docker.io/library/app:latest"},
		{"stray file in blobs", func(t *testing.T, s *Store, _ v1.Descriptor, _ v1.Hash) {
			os.WriteFile(filepath.Join(s.blobsDir(), "notadigest"), nil, 0o600)
		}, "blobs/sha256/notadigest"},
		{"bad snapshot name", func(t *testing.T, s *Store, _ v1.Descriptor, _ v1.Hash) {
			os.Mkdir(filepath.Join(s.Root(), "snapshots", "tmp-123"), 0o700)
		}, "snapshot tmp-123"},
		{"corrupt index.json", func(t *testing.T, s *Store, _ v1.Descriptor, _ v1.Hash) {
			os.WriteFile(s.indexPath(), []byte("{"), 0o600)
		}, "index.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			d := putTestImage(t, s, map[string]string{"a": "1"})
			if err := s.Tag(context.Background(), "app", d); err != nil {
				t.Fatal(err)
			}
			m := mustManifest(t, s, d.Digest)
			tc.damage(t, s, d, m.Layers[0].Digest)
			r, err := s.Fsck(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if tc.problem == "" {
				if !r.OK() || r.Blobs != 3 || r.Images != 1 {
					t.Errorf("Fsck(clean) = %+v, want OK, 3 blobs, 1 image", r)
				}
				return
			}
			want := strings.Replace(tc.problem, "LAYER", m.Layers[0].Digest.String(), 1)
			var all []string
			for _, p := range r.Problems {
				all = append(all, p.String())
			}
			if r.OK() || !strings.Contains(strings.Join(all, "\n"), want) {
				t.Errorf("Fsck problems = %q, want one naming %q", all, want)
			}
		})
	}
}

func TestFsckCountsUnreferencedAndStale(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	putTestImage(t, s, map[string]string{"a": "1"}) // untagged: all 3 blobs unreferenced
	<-s.reclaimed                                   // or the dead file below could be reclaimed before Fsck
	if err := os.WriteFile(filepath.Join(s.Root(), "ingest", "blob-dead"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := s.Fsck(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || len(r.Unreferenced) != 3 {
		t.Errorf("Fsck = %+v, want OK with 3 unreferenced blobs", r)
	}
	if r.Stale < 1 {
		t.Errorf("Fsck.Stale = %d, want the dead ingest file counted", r.Stale)
	}
}

func mustManifest(t *testing.T, s *Store, h v1.Hash) *v1.Manifest {
	t.Helper()
	img, err := s.Image(h)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return m
}
