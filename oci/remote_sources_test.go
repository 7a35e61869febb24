package oci

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"minibuild/oci/ocitest"
)

func TestAddBlobSource(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	d := v1.Descriptor{MediaType: types.OCILayer, Size: 3, Digest: ocitest.Digest([]byte("abc"))}
	if _, ok, err := s.RemoteBlob(d.Digest); ok || err != nil {
		t.Fatalf("RemoteBlob() before any record = %v, %v", ok, err)
	}
	for i := range 10 {
		if err := s.AddBlobSource(ctx, fmt.Sprintf("127.0.0.1:5000/r%d", i), d); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddBlobSource(ctx, "busybox", d); err != nil {
		t.Fatal(err)
	}
	if err := s.AddBlobSource(ctx, "127.0.0.1:5000/r8", d); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := s.AddBlobSource(ctx, "oci:"+dir, d); err != nil {
		t.Fatal(err)
	}
	rb, ok, err := s.RemoteBlob(d.Digest)
	if err != nil || !ok {
		t.Fatalf("RemoteBlob() = %v, %v", ok, err)
	}
	want := []string{"oci:" + dir, "127.0.0.1:5000/r8", "docker.io/library/busybox", "127.0.0.1:5000/r9",
		"127.0.0.1:5000/r7", "127.0.0.1:5000/r6", "127.0.0.1:5000/r5", "127.0.0.1:5000/r4"}
	if diff := cmp.Diff(want, rb.Repos); diff != "" {
		t.Errorf("sources, most recent first, at most 8 (-want +got):\n%s", diff)
	}
	if !cmp.Equal(rb.Descriptor, d) {
		t.Errorf("RemoteBlob().Descriptor = %+v, want %+v", rb.Descriptor, d)
	}
	for _, bad := range []string{"app:1", "oci:", "Bad/Name"} {
		if err := s.AddBlobSource(ctx, bad, d); !errors.Is(err, ErrInvalid) {
			t.Errorf("AddBlobSource(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if err := s.AddBlobSource(ctx, "x/y", v1.Descriptor{Digest: v1.Hash{Algorithm: "sha256", Hex: "zz"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("AddBlobSource(bad digest) = %v, want ErrInvalid", err)
	}
}

// lazyImage makes an image in s whose one layer is only known at repo.
func lazyImage(t *testing.T, s *Store, repo string) (v1.Descriptor, v1.Descriptor) {
	t.Helper()
	ctx := context.Background()
	tarb := ocitest.TarLayer(t, map[string]string{"f": "lazy"})
	gz := ocitest.Gzip(t, tarb)
	layer := v1.Descriptor{MediaType: types.OCILayer, Size: int64(len(gz)), Digest: ocitest.Digest(gz)}
	if err := s.AddBlobSource(ctx, repo, layer); err != nil {
		t.Fatal(err)
	}
	cfg := &v1.ConfigFile{Architecture: "amd64", OS: "linux", RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{ocitest.Digest(tarb)}}}
	d, err := s.PutImage(ctx, cfg, []v1.Descriptor{layer}, nil)
	if err != nil {
		t.Fatalf("PutImage(lazy layer) = %v", err)
	}
	if err := s.Tag(ctx, "lazy:1", d); err != nil {
		t.Fatal(err)
	}
	return d, layer
}

func TestLazyLayerFsckAndGC(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	_, layer := lazyImage(t, s, "127.0.0.1:5000/app")
	fsckClean(t, s)
	// Without a source the image is broken, and fsck says so.
	if _, err := s.PutImage(ctx, &v1.ConfigFile{RootFS: v1.RootFS{DiffIDs: []v1.Hash{layer.Digest}}},
		[]v1.Descriptor{{MediaType: types.OCILayer, Size: 1, Digest: ocitest.Digest([]byte("x"))}}, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("PutImage(unknown layer) = %v, want ErrNotFound", err)
	}
	if err := s.updateSources(ctx, func(doc *sourcesDoc) bool { doc.Blobs = nil; return true }); err != nil {
		t.Fatal(err)
	}
	r, err := s.Fsck(ctx)
	if err != nil || r.OK() {
		t.Errorf("Fsck() of an image whose layer is nowhere = %v, %v; want a problem", r.Problems, err)
	}
	// GC keeps the sources of what is reachable and forgets the rest.
	if err := s.AddBlobSource(ctx, "127.0.0.1:5000/app", layer, v1.Descriptor{Size: 1, Digest: ocitest.Digest([]byte("gone"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.RemoteBlob(layer.Digest); !ok {
		t.Errorf("GC forgot the source of a reachable lazy layer")
	}
	if _, ok, _ := s.RemoteBlob(ocitest.Digest([]byte("gone"))); ok {
		t.Errorf("GC kept the source of an unreachable blob")
	}
}

func TestFetchBlobFromLayout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	if err := s.FetchBlob(ctx, ocitest.Digest([]byte("nowhere")), FetchOptions{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("FetchBlob(no source) = %v, want ErrNotFound", err)
	}
	dir := t.TempDir()
	_, layer := lazyImage(t, s, "oci:"+dir)
	blob := filepath.Join(dir, "blobs", "sha256", layer.Digest.Hex)
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		t.Fatal(err)
	}
	gz := ocitest.Gzip(t, ocitest.TarLayer(t, map[string]string{"f": "lazy"}))
	bad := append([]byte{}, gz...)
	bad[len(bad)/2] ^= 0xff
	if err := os.WriteFile(blob, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.FetchBlob(ctx, layer.Digest, FetchOptions{}); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("FetchBlob(corrupt source) = %v, want ErrDigestMismatch", err)
	}
	if s.HasBlob(layer.Digest) {
		t.Errorf("a corrupt blob was stored")
	}
	if err := os.WriteFile(blob, gz, 0o644); err != nil {
		t.Fatal(err)
	}
	// Concurrent fetches share one download and all succeed.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.FetchBlob(ctx, layer.Digest, FetchOptions{})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil || !s.HasBlob(layer.Digest) {
		t.Errorf("concurrent FetchBlob() = %v, stored %v", err, s.HasBlob(layer.Digest))
	}
	fsckClean(t, s)
}
