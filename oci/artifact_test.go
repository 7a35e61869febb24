package oci

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"minibuild/internal/testenv"
	"minibuild/oci/ocitest"
)

const (
	testCacheType types.MediaType = "application/vnd.minibuild.cache.v1+json"
	testBlobType  types.MediaType = "application/vnd.minibuild.test.blob"
)

// putRandomBlobs writes n blobs of size random bytes into s.
func putRandomBlobs(t *testing.T, s *Store, n, size int) []v1.Descriptor {
	t.Helper()
	var ds []v1.Descriptor
	for range n {
		b := make([]byte, size)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		d := v1.Descriptor{MediaType: testBlobType, Size: int64(size), Digest: ocitest.Digest(b)}
		if err := s.WriteBlob(context.Background(), bytesReader(b), d.Digest, d.Size); err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	return ds
}

func TestArtifactRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := startRegistry(t)
	px := testenv.StartFaultProxy(t, reg.Endpoint, testenv.ProxyOptions{})
	a := remoteStore(t, &px.Endpoint)
	blobs := putRandomBlobs(t, a, 3, 100<<10)
	spec := ArtifactSpec{
		ConfigMediaType: testCacheType,
		Config:          []byte(`{"records":["a","b"]}`),
		Blobs:           blobs,
		Annotations:     map[string]string{"org.opencontainers.image.created": "2020-01-02T03:04:05Z"},
	}
	ref := px.Ref("ci/cache:main")
	d, err := a.PushArtifact(ctx, ref, spec, PushOptions{})
	if err != nil {
		t.Fatalf("PushArtifact(%s) = %v", ref, err)
	}

	// A fresh store reads the manifest and config, not the blobs.
	b := remoteStore(t, &px.Endpoint)
	px.ResetStats()
	got, err := b.FetchArtifact(ctx, ref)
	if err != nil {
		t.Fatalf("FetchArtifact(%s) = %v", ref, err)
	}
	want := Artifact{
		Descriptor:      v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: d.Size, Digest: d.Digest, ArtifactType: string(testCacheType)},
		ArtifactType:    string(testCacheType),
		ConfigMediaType: testCacheType,
		Config:          spec.Config,
		Blobs:           blobs,
		Annotations:     spec.Annotations,
		Source:          px.Addr + "/ci/cache",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FetchArtifact() mismatch (-want +got):\n%s", diff)
	}
	if n := px.BlobBytes(); n != int64(len(spec.Config)) {
		t.Errorf("FetchArtifact downloaded %d blob bytes, want only the %d of the config", n, len(spec.Config))
	}
	if b.HasBlob(blobs[0].Digest) {
		t.Errorf("FetchArtifact stored a blob")
	}
	rb, ok, err := b.RemoteBlob(blobs[0].Digest)
	if err != nil || !ok || rb.Repos[0] != got.Source || rb.Descriptor.Size != blobs[0].Size {
		t.Errorf("RemoteBlob() = %+v, %v, %v; want the artifact's repository", rb, ok, err)
	}

	// Its blobs come when asked for, verified.
	if err := b.FetchBlob(ctx, blobs[0].Digest, FetchOptions{}); err != nil {
		t.Fatalf("FetchBlob() = %v", err)
	}
	if !b.HasBlob(blobs[0].Digest) {
		t.Errorf("FetchBlob() did not store the blob")
	}
	if n := px.BlobBytes(); n != int64(len(spec.Config))+blobs[0].Size {
		t.Errorf("after FetchBlob, %d blob bytes downloaded, want config + one blob", n)
	}

	// Pushing it elsewhere on the registry moves no bytes: mounts.
	px.ResetStats()
	var ev events
	if _, err := b.PushArtifact(ctx, px.Ref("ci/cache2:main"), ArtifactSpec{ConfigMediaType: testCacheType, Config: spec.Config, Blobs: blobs}, PushOptions{Progress: ev.add}); err != nil {
		t.Fatalf("PushArtifact(elsewhere) = %v", err)
	}
	if n, m := uploads(px), px.BlobBytes(); n != 0 || m != 0 {
		t.Errorf("pushing a fetched artifact elsewhere: %d uploads, %d bytes downloaded; want 0 and 0", n, m)
	}
	if n := ev.count(BlobMounted); n != 4 {
		t.Errorf("%d blobs mounted, want 4 (config and 3 blobs): %v", n, ev.final())
	}
	fsckClean(t, a)
	fsckClean(t, b)
}

func TestArtifactErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	missing := v1.Descriptor{MediaType: testBlobType, Size: 3, Digest: ocitest.Digest([]byte("abc"))}
	for name, spec := range map[string]ArtifactSpec{
		"no config":       {Blobs: nil},
		"no media type":   {Config: []byte("{}")},
		"missing blob":    {ConfigMediaType: testCacheType, Config: []byte("{}"), Blobs: []v1.Descriptor{missing}},
		"blob media type": {ConfigMediaType: testCacheType, Config: []byte("{}"), Blobs: []v1.Descriptor{{Size: 3, Digest: missing.Digest}}},
	} {
		if _, err := s.PushArtifactLayout(ctx, t.TempDir(), "", spec, PushOptions{}); !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: PushArtifactLayout() = %v, want ErrInvalid or ErrNotFound", name, err)
		}
	}
	if _, err := s.FetchArtifactLayout(ctx, t.TempDir(), ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("FetchArtifactLayout(empty dir) = %v, want ErrNotFound", err)
	}
}

func TestArtifactLayout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := newStore(t)
	blobs := putRandomBlobs(t, a, 2, 10<<10)
	dir := filepath.Join(t.TempDir(), "cache")
	spec := ArtifactSpec{ArtifactType: "application/vnd.minibuild.cache.v1", ConfigMediaType: testCacheType, Config: []byte(`{"v":1}`), Blobs: blobs}
	d, err := a.PushArtifactLayout(ctx, dir, "", spec, PushOptions{})
	if err != nil {
		t.Fatalf("PushArtifactLayout() = %v", err)
	}
	// A second artifact under another tag; the first tag is rewritten.
	if _, err := a.PushArtifactLayout(ctx, dir, "other", ArtifactSpec{ArtifactType: "application/x-empty"}, PushOptions{}); err != nil {
		t.Fatalf("PushArtifactLayout(other, empty config) = %v", err)
	}
	if d2, err := a.PushArtifactLayout(ctx, dir, "latest", spec, PushOptions{}); err != nil || d2.Digest != d.Digest {
		t.Fatalf("PushArtifactLayout(again) = %v, %v; want %s", d2.Digest, err, d.Digest)
	}
	if names := indexNames(t, dir); len(names) != 2 || names["latest"] != d.Digest.String() {
		t.Errorf("layout tags = %v, want latest → %s and other", names, d.Digest)
	}
	if skopeo, err := exec.LookPath("skopeo"); err == nil {
		out, err := exec.Command(skopeo, "inspect", "--raw", "oci:"+dir+":latest").Output()
		sum := sha256.Sum256(out)
		if err != nil || "sha256:"+hex.EncodeToString(sum[:]) != d.Digest.String() {
			t.Errorf("skopeo inspect --raw oci:%s:latest = %v, want the manifest %s", dir, err, d.Digest)
		}
	}

	c := newStore(t)
	got, err := c.FetchArtifactLayout(ctx, dir, "")
	if err != nil {
		t.Fatalf("FetchArtifactLayout() = %v", err)
	}
	if got.Descriptor.Digest != d.Digest || string(got.Config) != `{"v":1}` || got.ArtifactType != spec.ArtifactType || !cmp.Equal(got.Blobs, blobs) {
		t.Errorf("FetchArtifactLayout() = %+v", got)
	}
	if err := c.FetchBlob(ctx, blobs[1].Digest, FetchOptions{}); err != nil || !c.HasBlob(blobs[1].Digest) {
		t.Errorf("FetchBlob() from the layout = %v", err)
	}
	if _, err := c.FetchArtifactLayout(ctx, dir, "nothere"); !errors.Is(err, ErrNotFound) {
		t.Errorf("FetchArtifactLayout(nothere) = %v, want ErrNotFound", err)
	}
	fsckClean(t, c)
}

// indexNames maps the ref.name of each entry of a layout's index.json to
// its digest.
func indexNames(t *testing.T, dir string) map[string]string {
	t.Helper()
	idx, err := readLayoutIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, d := range idx.Manifests {
		m[refName(d)] = d.Digest.String()
	}
	return m
}

func TestLazyPullPushFetch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := startRegistry(t)
	px := testenv.StartFaultProxy(t, reg.Endpoint, testenv.ProxyOptions{})
	img := ocitest.RandomImage(t, 2, 128<<10)
	seedImage(t, &reg.Endpoint, reg.Ref("app:1"), img)
	layers := imageLayers(t, img)
	ref := px.Ref("app:1")

	s := remoteStore(t, &px.Endpoint)
	var ev events
	d, err := s.Pull(ctx, ref, PullOptions{Lazy: true, Progress: ev.add})
	if err != nil {
		t.Fatalf("Pull(lazy) = %v", err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if n := px.BlobBytes(); n != m.Config.Size {
		t.Errorf("lazy pull downloaded %d blob bytes, want only the config's %d", n, m.Config.Size)
	}
	if n := ev.count(BlobRemote); n != 2 || s.HasBlob(layers[0].Digest) {
		t.Errorf("lazy pull: %d layers left remote, want 2", n)
	}
	fsckClean(t, s) // lazy layers are not problems

	// An image made on top of the lazy layers is accepted.
	cfg := mustConfig(t, s, d.Digest)
	if _, err := s.PutImage(ctx, cfg, layers, nil); err != nil {
		t.Errorf("PutImage(lazy layers) = %v", err)
	}

	// Pushing within the registry moves no layer bytes.
	px.ResetStats()
	if _, err := s.Push(ctx, ref, px.Ref("copy/app:1"), PushOptions{}); err != nil {
		t.Fatalf("Push(lazy image) = %v", err)
	}
	if n, u := px.BlobBytes(), uploads(px); n != 0 || u != 0 {
		t.Errorf("push of a lazy image: %d bytes downloaded, %d uploads; want 0 and 0", n, u)
	}

	// Pushing to another registry streams them from their source.
	other := testenv.StartRegistry(t, testenv.RegistryOptions{})
	dest := other.Ref("mirror/app:1")
	if _, err := s.Push(ctx, ref, dest, PushOptions{}); err != nil {
		t.Fatalf("Push(%s) = %v", dest, err)
	}
	if s.HasBlob(layers[0].Digest) {
		t.Errorf("a push stored a lazy layer")
	}
	check := remoteStore(t, &other.Endpoint)
	if got, err := check.Pull(ctx, dest, PullOptions{}); err != nil || got.Digest != d.Digest {
		t.Errorf("pull of the mirrored image = %v, %v; want %s", got.Digest, err, d.Digest)
	}

	// FetchImage makes it whole (from the most recent source, the mirror).
	if err := s.FetchImage(ctx, ref, FetchOptions{}); err != nil {
		t.Fatalf("FetchImage() = %v", err)
	}
	if !s.HasBlob(layers[0].Digest) || !s.HasBlob(layers[1].Digest) {
		t.Errorf("after FetchImage, layers local: %v %v", s.HasBlob(layers[0].Digest), s.HasBlob(layers[1].Digest))
	}
	fsckClean(t, s)
}
