package oci

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"minibuild/internal/testenv"
	"minibuild/oci/ocitest"
)

func TestParsePullPolicy(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]PullPolicy{"": PullMissing, "missing": PullMissing, "always": PullAlways, "Never": PullNever, "true": PullAlways} {
		if got, err := ParsePullPolicy(in); err != nil || got != want {
			t.Errorf("ParsePullPolicy(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParsePullPolicy("sometimes"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParsePullPolicy(sometimes) = %v, want ErrInvalid", err)
	}
}

func TestResolveBaseMissingWorksOffline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := startRegistry(t)
	px := testenv.StartFaultProxy(t, reg.Endpoint, testenv.ProxyOptions{})
	amd64 := v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 := v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	idx, _ := multiPlatform(t, amd64, arm64)
	idxDigest := seedIndex(t, &reg.Endpoint, reg.Ref("base:1"), idx)
	s := remoteStore(t, &px.Endpoint)
	tag, pin := px.Ref("base:1"), px.Ref("base@"+idxDigest.String())

	first, err := s.ResolveBase(ctx, tag, PullMissing, PullOptions{})
	if err != nil {
		t.Fatalf("ResolveBase(%s) = %v", tag, err)
	}
	if px.Count("", "") == 0 {
		t.Fatalf("the first resolve made no request")
	}
	reg.Stop()
	px.ResetStats()
	for _, ref := range []string{tag, pin} {
		d, err := s.ResolveBase(ctx, ref, PullMissing, PullOptions{})
		if err != nil || d.Digest != first.Digest {
			t.Errorf("offline ResolveBase(%s, missing) = %v, %v; want %s from the store", ref, d.Digest, err, first.Digest)
		}
		d, err = s.ResolveBase(ctx, ref, PullNever, PullOptions{})
		if err != nil || d.Digest != first.Digest {
			t.Errorf("offline ResolveBase(%s, never) = %v, %v; want %s", ref, d.Digest, err, first.Digest)
		}
	}
	// A pin is content: always needs no check either.
	if d, err := s.ResolveBase(ctx, pin, PullAlways, PullOptions{}); err != nil || d.Digest != first.Digest {
		t.Errorf("offline ResolveBase(pin, always) = %v, %v", d.Digest, err)
	}
	if n := px.Count("", ""); n != 0 {
		t.Errorf("offline resolves made %d requests, want 0: %+v", n, px.Requests())
	}
	// Another platform is not in the store: that needs the registry.
	if _, err := s.ResolveBase(ctx, tag, PullNever, PullOptions{Platform: v1.Platform{OS: "linux", Architecture: "s390x"}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("ResolveBase(s390x, never) = %v, want ErrNotFound", err)
	}
	// With the registry down, always fails clearly.
	px.Stop()
	_, err = s.ResolveBase(ctx, tag, PullAlways, PullOptions{})
	var re *RemoteError
	if !errors.As(err, &re) || re.Registry != px.Addr || re.Repository != "base" {
		t.Errorf("ResolveBase(always) with the registry down = %v, want a RemoteError naming %s and base", err, px.Addr)
	}
}

func TestResolveBaseNever(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	_, err := s.ResolveBase(context.Background(), "busybox", PullNever, PullOptions{})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "minibuild pull busybox") {
		t.Errorf("ResolveBase(busybox, never) on an empty store = %v, want ErrNotFound suggesting a pull", err)
	}
	// An imported image resolves like a pulled one, index or not.
	img := ocitest.Image(t, map[string]string{"a": "b"})
	h := importAs(t, s, "busybox", img)
	d, err := s.ResolveBase(context.Background(), "busybox:latest", PullNever, PullOptions{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}})
	if err != nil || d.Digest != h {
		t.Errorf("ResolveBase(imported busybox) = %v, %v; want %s", d.Digest, err, h)
	}
}

func TestResolveBaseAlwaysDetectsNewTag(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := startRegistry(t)
	px := testenv.StartFaultProxy(t, reg.Endpoint, testenv.ProxyOptions{})
	ref := px.Ref("moving:latest")
	v1img := ocitest.Image(t, map[string]string{"version": "1"})
	v2img := ocitest.Image(t, map[string]string{"version": "2"})
	h1 := seedImage(t, &reg.Endpoint, reg.Ref("moving:latest"), v1img)
	s := remoteStore(t, &px.Endpoint)
	d, err := s.ResolveBase(ctx, ref, PullAlways, PullOptions{})
	if err != nil || d.Digest != h1 {
		t.Fatalf("ResolveBase(always) = %v, %v; want %s", d.Digest, err, h1)
	}
	// Unchanged: one manifest check, no download.
	px.ResetStats()
	if d, err = s.ResolveBase(ctx, ref, PullAlways, PullOptions{}); err != nil || d.Digest != h1 {
		t.Fatalf("ResolveBase(always, unchanged) = %v, %v", d.Digest, err)
	}
	gets := px.Count(http.MethodGet, testenv.KindManifest) + px.Count(http.MethodGet, testenv.KindBlob)
	if n := px.Count(http.MethodHead, testenv.KindManifest); n != 1 || gets != 0 {
		t.Errorf("unchanged tag: %d HEAD manifest and %d GET manifest or blob requests, want 1 and 0", n, gets)
	}
	// The tag moves: always notices, missing does not look.
	h2 := seedImage(t, &reg.Endpoint, reg.Ref("moving:latest"), v2img)
	if d, err = s.ResolveBase(ctx, ref, PullMissing, PullOptions{}); err != nil || d.Digest != h1 {
		t.Errorf("ResolveBase(missing) after the tag moved = %v, %v; want the stored %s", d.Digest, err, h1)
	}
	if d, err = s.ResolveBase(ctx, ref, PullAlways, PullOptions{}); err != nil || d.Digest != h2 {
		t.Errorf("ResolveBase(always) after the tag moved = %v, %v; want %s", d.Digest, err, h2)
	}
	if r, err := s.Resolve(ref); err != nil || r.Digest != h2 {
		t.Errorf("Resolve(%s) = %v, %v; want the new %s", ref, r.Digest, err, h2)
	}
	fsckClean(t, s)
}
