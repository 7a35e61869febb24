package oci

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"minibuild/internal/testenv"
	"minibuild/oci/ocitest"
)

// platformImage is a one-layer image whose config says p.
func platformImage(t *testing.T, p v1.Platform) v1.Image {
	t.Helper()
	img := ocitest.Image(t, map[string]string{"arch": p.String()})
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Variant = p.OS, p.Architecture, p.Variant
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	return img
}

// multiPlatform is an OCI index of one image per platform, plus an
// attestation-like entry for unknown/unknown.
func multiPlatform(t *testing.T, ps ...v1.Platform) (v1.ImageIndex, map[string]v1.Hash) {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	digests := map[string]v1.Hash{}
	for _, p := range append(ps, v1.Platform{OS: "unknown", Architecture: "unknown"}) {
		img := platformImage(t, p)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
		digests[p.String()] = mustDigest(t, img)
	}
	return idx, digests
}

func seedIndex(t *testing.T, ep *testenv.Endpoint, ref string, idx v1.ImageIndex) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx, ggcrOptions(ep)...); err != nil {
		t.Fatalf("seed %s: %v", ref, err)
	}
	h, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestPullMultiPlatform(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := startRegistry(t)
	amd64 := v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 := v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	armv6 := v1.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}
	armv7 := v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}
	idx, digests := multiPlatform(t, amd64, arm64, armv6, armv7)
	ref := reg.Ref("multi:1")
	idxDigest := seedIndex(t, &reg.Endpoint, ref, idx)

	s := remoteStore(t, &reg.Endpoint)
	host := HostPlatform().String()
	if want, ok := digests[host]; ok {
		d, err := s.Pull(ctx, ref, PullOptions{})
		if err != nil {
			t.Fatalf("Pull(%s) = %v", ref, err)
		}
		if d.Digest != want || d.Platform == nil || d.Platform.Architecture != runtime.GOARCH {
			t.Errorf("Pull(%s) on %s = %s (%v), want %s", ref, host, d.Digest, d.Platform, want)
		}
	}
	for _, tc := range []struct {
		platform v1.Platform
		want     string
	}{
		{arm64, arm64.String()},
		{v1.Platform{OS: "linux", Architecture: "aarch64"}, arm64.String()},
		{armv7, armv7.String()},
		{v1.Platform{OS: "linux", Architecture: "arm", Variant: "v8"}, armv7.String()}, // closest older variant
		{amd64, amd64.String()},
	} {
		d, err := s.Pull(ctx, ref, PullOptions{Platform: tc.platform})
		if err != nil {
			t.Fatalf("Pull(%s, %s) = %v", ref, tc.platform, err)
		}
		if d.Digest != digests[tc.want] {
			t.Errorf("Pull(%s, %s) = %s, want the %s image %s", ref, tc.platform, d.Digest, tc.want, digests[tc.want])
		}
		if got := repoDigests(d); !slices.Contains(got, strings.TrimSuffix(ref, ":1")+"@"+idxDigest.String()) {
			t.Errorf("repo digests of %s = %v, want the index digest %s", tc.platform, got, idxDigest)
		}
	}
	_, err := s.Pull(ctx, ref, PullOptions{Platform: v1.Platform{OS: "linux", Architecture: "s390x"}})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "linux/arm64/v8") || strings.Contains(err.Error(), "unknown/unknown") {
		t.Errorf("Pull(s390x) = %v, want ErrNotFound listing the platforms there are", err)
	}
	fsckClean(t, s)
}

func TestPullSinglePlatformMismatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := startRegistry(t)
	s390 := v1.Platform{OS: "linux", Architecture: "s390x"}
	ref := reg.Ref("other:1")
	seedImage(t, &reg.Endpoint, ref, platformImage(t, s390))
	s := remoteStore(t, &reg.Endpoint)
	if _, err := s.Pull(ctx, ref, PullOptions{Platform: v1.Platform{OS: "linux", Architecture: "arm64"}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Pull(s390x image for arm64) = %v, want ErrNotFound", err)
	}
	// Without a platform asked for, it is pulled (with a warning), like Docker.
	d, err := s.Pull(ctx, ref, PullOptions{})
	if err != nil || d.Platform == nil || d.Platform.Architecture != "s390x" {
		t.Errorf("Pull(s390x image) = %+v, %v; want it pulled", d, err)
	}
}

func TestPullOnlyMissingBlobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := startRegistry(t)
	px := testenv.StartFaultProxy(t, reg.Endpoint, testenv.ProxyOptions{})
	base := map[string]string{"bin/sh": "#!"}
	img1 := ocitest.Image(t, base)
	img2 := ocitest.Image(t, base, map[string]string{"app": "v2"})
	seedImage(t, &reg.Endpoint, reg.Ref("app:1"), img1)
	seedImage(t, &reg.Endpoint, reg.Ref("app:2"), img2)

	s := remoteStore(t, &px.Endpoint)
	var ev events
	if _, err := s.Pull(ctx, px.Ref("app:1"), PullOptions{Progress: ev.add}); err != nil {
		t.Fatal(err)
	}
	if n := ev.count(BlobDone); n != 2 {
		t.Errorf("first pull: %d blobs downloaded, want 2: %v", n, ev.final())
	}
	px.ResetStats()
	ev = events{}
	if _, err := s.Pull(ctx, px.Ref("app:2"), PullOptions{Progress: ev.add}); err != nil {
		t.Fatal(err)
	}
	b2 := imageBlobs(t, img2)
	want := []string{b2[0].String(), b2[2].String()} // config, new layer
	got := blobGets(px)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("second pull downloaded %v, want only %v", got, want)
	}
	if st := ev.final()[b2[1]]; st != BlobExists {
		t.Errorf("shared layer: %s, want exists", st)
	}
	// Pulling again moves no blob at all.
	px.ResetStats()
	if _, err := s.Pull(ctx, px.Ref("app:2"), PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := blobGets(px); len(got) != 0 {
		t.Errorf("third pull downloaded %v, want nothing", got)
	}
	fsckClean(t, s)
}

func TestPullByDigestTagsNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := startRegistry(t)
	img := ocitest.Image(t, map[string]string{"x": "y"})
	h := seedImage(t, &reg.Endpoint, reg.Ref("pinned:1"), img)
	s := remoteStore(t, &reg.Endpoint)
	ref := reg.Ref("pinned@" + h.String())
	d, err := s.Pull(ctx, ref, PullOptions{})
	if err != nil || d.Digest != h {
		t.Fatalf("Pull(%s) = %v, %v; want %s", ref, d.Digest, err, h)
	}
	if infos, _ := s.Images(); len(infos) != 1 || infos[0].Name != "" {
		t.Errorf("Images() after a pull by digest = %+v, want one untagged image", infos)
	}
	if !slices.Contains(repoDigests(d), ref) {
		t.Errorf("repo digests = %v, want %s", repoDigests(d), ref)
	}
	// A later pull by tag keeps the record of the pin.
	d, err = s.Pull(ctx, reg.Ref("pinned:1"), PullOptions{})
	if err != nil || !slices.Contains(repoDigests(d), ref) {
		t.Errorf("Pull(tag) = %v, %v; want the pin kept in its repo digests", repoDigests(d), err)
	}
	if infos, _ := s.Images(); len(infos) != 1 || infos[0].Name != reg.Ref("pinned:1") {
		t.Errorf("Images() = %+v, want the tagged image only", infos)
	}
	fsckClean(t, s)
}

func TestPlatformMatching(t *testing.T) {
	t.Parallel()
	p := func(s string) v1.Platform {
		t.Helper()
		pl, err := ParsePlatform(s)
		if err != nil {
			t.Fatal(err)
		}
		return pl
	}
	for _, tc := range []struct {
		want, have string
		ok         bool
	}{
		{"linux/amd64", "linux/amd64", true},
		{"linux/x86_64", "linux/amd64", true},
		{"linux/arm64", "linux/arm64/v8", true},
		{"linux/arm64/v8", "linux/arm64", true},
		{"linux/arm/v7", "linux/arm/v6", true},
		{"linux/arm/v6", "linux/arm/v7", false},
		{"linux/amd64", "linux/arm64", false},
		{"linux/amd64", "windows/amd64", false},
	} {
		if got := platformScore(p(tc.want), p(tc.have)) > 0; got != tc.ok {
			t.Errorf("platformScore(%s, %s) > 0 = %v, want %v", tc.want, tc.have, got, tc.ok)
		}
	}
	if got := p("").String(); got != HostPlatform().String() || !strings.HasPrefix(got, "linux/"+runtime.GOARCH) {
		t.Errorf("ParsePlatform(\"\") = %s, want the host %s", got, HostPlatform())
	}
	for _, bad := range []string{"linux", "/amd64", "linux/amd64,linux/arm64"} {
		if _, err := ParsePlatform(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParsePlatform(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}
