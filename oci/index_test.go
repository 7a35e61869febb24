package oci

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"minibuild/oci/ocitest"
)

func TestParseName(t *testing.T) {
	t.Parallel()
	const dgst = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		in, want string
	}{
		{"busybox", "docker.io/library/busybox:latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36"},
		{"library/busybox", "docker.io/library/busybox:latest"},
		{"docker.io/busybox", "docker.io/library/busybox:latest"},
		{"index.docker.io/library/busybox:x", "docker.io/library/busybox:x"},
		{"me/app:v1", "docker.io/me/app:v1"},
		{"ghcr.io/org/app", "ghcr.io/org/app:latest"},
		{"localhost:5000/app:dev", "localhost:5000/app:dev"},
		{"localhost/app", "localhost/app:latest"},
		{"busybox@" + dgst, "docker.io/library/busybox@" + dgst},
		{"busybox:1@" + dgst, "docker.io/library/busybox@" + dgst},
	}
	for _, tc := range tests {
		got, err := ParseName(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "UPPER/case", "a b", "busybox:", ":tag", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"} {
		if got, err := ParseName(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseName(%q) = %q, %v; want ErrInvalid", bad, got, err)
		}
	}
}

// putTestImage stores a small OCI image built from files and returns its
// manifest descriptor.
func putTestImage(t *testing.T, s *Store, files map[string]string) v1.Descriptor {
	t.Helper()
	ctx := context.Background()
	gz := ocitest.Gzip(t, ocitest.TarLayer(t, files))
	layer := v1.Descriptor{MediaType: types.OCILayer, Size: int64(len(gz)), Digest: ocitest.Digest(gz)}
	if err := s.WriteBlob(ctx, bytesReader(gz), layer.Digest, layer.Size); err != nil {
		t.Fatal(err)
	}
	cfg := &v1.ConfigFile{Architecture: "amd64", OS: "linux", Created: v1.Time{Time: ocitest.Epoch},
		RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{ocitest.Digest(ocitest.TarLayer(t, files))}}}
	d, err := s.PutImage(ctx, cfg, []v1.Descriptor{layer}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestTagResolveUntag(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	a := putTestImage(t, s, map[string]string{"a": "1"})
	b := putTestImage(t, s, map[string]string{"b": "2"})
	if err := s.Tag(ctx, "app", a); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, "docker.io/library/app:v2", b); err != nil {
		t.Fatal(err)
	}
	resolves := map[string]v1.Hash{
		"app":                                  a.Digest,
		"app:latest":                           a.Digest,
		"docker.io/library/app:latest":         a.Digest,
		"app:v2":                               b.Digest,
		a.Digest.String():                      a.Digest,
		"app@" + b.Digest.String():             b.Digest,
		a.Digest.Hex[:12]:                      a.Digest,
		"sha256:" + b.Digest.Hex[:7]:           b.Digest,
		"whatever@" + a.Digest.String():        a.Digest, // like Docker, the digest wins
		"localhost/other@" + b.Digest.String(): b.Digest,
	}
	for ref, want := range resolves {
		d, err := s.Resolve(ref)
		if err != nil || d.Digest != want {
			t.Errorf("Resolve(%q) = %s, %v; want %s", ref, d.Digest, err, want)
		}
	}
	if _, err := s.Resolve("nothere"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve(nothere) = %v, want ErrNotFound", err)
	}

	// Re-tagging moves the name.
	if err := s.Tag(ctx, "app", b); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Resolve("app"); d.Digest != b.Digest {
		t.Errorf("after re-tag Resolve(app) = %s, want %s", d.Digest, b.Digest)
	}
	infos, err := s.Images()
	if err != nil || len(infos) != 2 {
		t.Fatalf("Images() = %v, %v; want 2 entries", infos, err)
	}
	if err := s.Untag("app"); err != nil {
		t.Fatal(err)
	}
	if err := s.Untag("app"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Untag(app) = %v, want ErrNotFound", err)
	}
	if _, err := s.Resolve("app"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve(app) after Untag = %v, want ErrNotFound", err)
	}
}

func TestTagRefusesWhatIsNotThere(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	d := putTestImage(t, s, map[string]string{"a": "1"})
	missing := d
	missing.Digest = ocitest.Digest([]byte("no such manifest"))
	wrongSize := d
	wrongSize.Size++
	layer := d
	layer.MediaType = types.OCILayer
	tests := []struct {
		name string
		ref  string
		desc v1.Descriptor
		err  error
	}{
		{"missing blob", "x", missing, ErrNotFound},
		{"wrong size", "x", wrongSize, ErrSizeMismatch},
		{"not a manifest", "x", layer, ErrUnsupported},
		{"digest name", "x@" + d.Digest.String(), d, ErrInvalid},
		{"bad name", "X", d, ErrInvalid},
	}
	for _, tc := range tests {
		if err := s.Tag(ctx, tc.ref, tc.desc); !errors.Is(err, tc.err) {
			t.Errorf("%s: Tag(%q) = %v, want %v", tc.name, tc.ref, err, tc.err)
		}
	}
	if infos, _ := s.Images(); len(infos) != 0 {
		t.Errorf("Images() after failed tags = %v, want none", infos)
	}
}

func TestResolveAmbiguousPrefix(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	// Find two images whose digests share a first hex digit.
	byFirst := map[byte]v1.Descriptor{}
	for i := 0; ; i++ {
		d := putTestImage(t, s, map[string]string{"f": fmt.Sprint(i)})
		if err := s.Tag(ctx, fmt.Sprintf("img%d", i), d); err != nil {
			t.Fatal(err)
		}
		if _, ok := byFirst[d.Digest.Hex[0]]; ok {
			if _, err := s.Resolve(d.Digest.Hex[:1]); !errors.Is(err, ErrAmbiguous) {
				t.Errorf("Resolve(%q) = %v, want ErrAmbiguous", d.Digest.Hex[:1], err)
			}
			return
		}
		byFirst[d.Digest.Hex[0]] = d
	}
}

func TestRemoveImage(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	d := putTestImage(t, s, map[string]string{"a": "1"})
	for _, n := range []string{"one", "two"} {
		if err := s.Tag(ctx, n, d); err != nil {
			t.Fatal(err)
		}
	}
	names, err := s.RemoveImage(ctx, "one")
	if err != nil || len(names) != 1 || names[0] != "docker.io/library/one:latest" {
		t.Errorf("RemoveImage(one) = %v, %v; want [docker.io/library/one:latest]", names, err)
	}
	names, err = s.RemoveImage(ctx, d.Digest.Hex[:12])
	if err != nil || len(names) != 1 || names[0] != "docker.io/library/two:latest" {
		t.Errorf("RemoveImage(short ID) = %v, %v; want [docker.io/library/two:latest]", names, err)
	}
	if _, err := s.RemoveImage(ctx, "one"); !errors.Is(err, ErrNotFound) {
		t.Errorf("RemoveImage(one) again = %v, want ErrNotFound", err)
	}
}

// Two processes' worth of taggers (separate Stores: separate lock file
// descriptions) must not lose each other's updates.
func TestConcurrentTagging(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "root")
	stores := []*Store{openAt(t, root), openAt(t, root)}
	d := putTestImage(t, stores[0], map[string]string{"a": "1"})
	const perStore = 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*perStore)
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perStore {
				errs <- s.Tag(context.Background(), fmt.Sprintf("s%d/img:%d", i, j), d)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	infos, err := stores[1].Images()
	if err != nil || len(infos) != 2*perStore {
		t.Errorf("Images() = %d entries, %v; want %d", len(infos), err, 2*perStore)
	}
}
