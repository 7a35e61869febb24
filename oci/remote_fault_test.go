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

// Each case pulls or pushes through a fault proxy and must end in success
// after retries, or in one clear error, with nothing half stored.

// faultImage is a registry holding app:1, a two-layer image with layers
// large enough to be cut midway.
func faultImage(t *testing.T) (*testenv.Registry, v1.Image) {
	t.Helper()
	reg := startRegistry(t)
	img := ocitest.RandomImage(t, 2, 256<<10)
	seedImage(t, &reg.Endpoint, reg.Ref("app:1"), img)
	return reg, img
}

func countGets(px *testenv.FaultProxy, h v1.Hash) int {
	n := 0
	for _, g := range blobGets(px) {
		if g == h.String() {
			n++
		}
	}
	return n
}

func TestPullRetriesTransientFaults(t *testing.T) {
	t.Parallel()
	reg, img := faultImage(t)
	layer := imageLayers(t, img)[0].Digest
	for _, tc := range []struct {
		name  string
		rules []testenv.Rule
		gets  int // GET requests of the layer
	}{
		{"500 then 503", []testenv.Rule{
			{Method: "GET", Kind: testenv.KindBlob, PathContains: layer.Hex, Times: 1, Fault: testenv.FailWith(500)},
			{Method: "GET", Kind: testenv.KindBlob, PathContains: layer.Hex, Times: 1, Fault: testenv.FailWith(503)},
		}, 3},
		{"502 on the manifest", []testenv.Rule{
			{Method: "GET", Kind: testenv.KindManifest, Times: 1, Fault: testenv.FailWith(502)},
		}, 1},
		{"reset mid-blob", []testenv.Rule{
			{Method: "GET", Kind: testenv.KindBlob, PathContains: layer.Hex, Times: 1, Fault: testenv.ResetAfter(64 << 10)},
		}, 2},
		{"reset twice", []testenv.Rule{
			{Method: "GET", Kind: testenv.KindBlob, PathContains: layer.Hex, Times: 2, Fault: testenv.ResetAfter(1000)},
		}, 3},
		{"dropped connection", []testenv.Rule{
			{Method: "GET", Kind: testenv.KindBlob, PathContains: layer.Hex, Times: 1, Fault: testenv.Drop()},
		}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			px := testenv.StartFaultProxy(t, reg.Endpoint, testenv.ProxyOptions{})
			px.Add(tc.rules...)
			s := remoteStore(t, &px.Endpoint)
			var ev events
			ref := px.Ref("app:1")
			d, err := s.Pull(context.Background(), ref, PullOptions{Progress: ev.add})
			if err != nil {
				t.Fatalf("Pull(%s) = %v, want success after retries", ref, err)
			}
			if d.Digest != mustDigest(t, img) {
				t.Errorf("Pull() = %s, want %s", d.Digest, mustDigest(t, img))
			}
			// A dropped request may be resent by Go's transport on its own.
			if got := countGets(px, layer); got < tc.gets || got > tc.gets+1 {
				t.Errorf("layer downloaded %d times, want %d", got, tc.gets)
			}
			fsckClean(t, s)
		})
	}
}

func TestPullFailsClearly(t *testing.T) {
	t.Parallel()
	reg, img := faultImage(t)
	layer := imageLayers(t, img)[1].Digest
	for _, tc := range []struct {
		name   string
		rule   testenv.Rule
		want   error
		object v1.Hash // the digest the error names; zero for none
		gets   int     // requests the rule's object may see: no retry storm
	}{
		{"401", testenv.Rule{Method: "GET", Kind: testenv.KindBlob, PathContains: layer.Hex, Fault: testenv.FailWith(401)}, ErrUnauthorized, layer, 1},
		{"403", testenv.Rule{Method: "GET", Kind: testenv.KindBlob, PathContains: layer.Hex, Fault: testenv.FailWith(403)}, ErrUnauthorized, layer, 1},
		{"404 blob", testenv.Rule{Method: "GET", Kind: testenv.KindBlob, PathContains: layer.Hex, Fault: testenv.FailWith(404)}, ErrNotFound, layer, 1},
		{"corrupt byte", testenv.Rule{Method: "GET", Kind: testenv.KindBlob, PathContains: layer.Hex, Fault: testenv.CorruptAt(1000)}, ErrDigestMismatch, layer, 1},
		{"404 manifest", testenv.Rule{Method: "GET", Kind: testenv.KindManifest, Fault: testenv.FailWith(404)}, ErrNotFound, v1.Hash{}, 0},
		{"503 forever", testenv.Rule{Method: "GET", Kind: testenv.KindBlob, PathContains: layer.Hex, Fault: testenv.FailWith(503)}, nil, layer, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			px := testenv.StartFaultProxy(t, reg.Endpoint, testenv.ProxyOptions{})
			px.Add(tc.rule)
			s := remoteStore(t, &px.Endpoint)
			ref := px.Ref("app:1")
			_, err := s.Pull(context.Background(), ref, PullOptions{})
			var re *RemoteError
			if !errors.As(err, &re) {
				t.Fatalf("Pull(%s) = %v, want a *RemoteError", ref, err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Pull() = %v, want %v", err, tc.want)
			}
			if re.Registry != px.Addr || re.Repository != "app" || re.Digest != tc.object {
				t.Errorf("error names %s / %s / %s, want %s / app / %s", re.Registry, re.Repository, re.Digest, px.Addr, tc.object)
			}
			msg := err.Error()
			t.Logf("error: %s", msg)
			if !strings.Contains(msg, px.Addr+"/app") || (tc.object != v1.Hash{} && !strings.Contains(msg, tc.object.String())) {
				t.Errorf("message %q does not name the registry, repository and digest", msg)
			}
			if tc.object != (v1.Hash{}) {
				if got := countGets(px, layer); got != tc.gets {
					t.Errorf("layer requested %d times, want %d", got, tc.gets)
				}
			} else if got := px.Count(http.MethodGet, testenv.KindManifest); got != 1 {
				t.Errorf("manifest requested %d times, want 1", got)
			}
			assertNothingPulled(t, s, ref, layer)
		})
	}
}

// assertNothingPulled checks a failed pull left no tag, no bad blob, no
// ingest, and a clean store.
func assertNothingPulled(t *testing.T, s *Store, ref string, layer v1.Hash) {
	t.Helper()
	if _, err := s.Resolve(ref); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve(%s) after a failed pull = %v, want ErrNotFound", ref, err)
	}
	if s.HasBlob(layer) {
		t.Errorf("the failed layer %s is in the store", layer)
	}
	fsckClean(t, s)
}

func TestPullRegistryDown(t *testing.T) {
	t.Parallel()
	reg, img := faultImage(t)
	px := testenv.StartFaultProxy(t, reg.Endpoint, testenv.ProxyOptions{})
	s := remoteStore(t, &px.Endpoint)
	px.Stop()
	ref := px.Ref("app:1")
	_, err := s.Pull(context.Background(), ref, PullOptions{})
	var re *RemoteError
	if !errors.As(err, &re) || re.Registry != px.Addr || re.Repository != "app" || !strings.Contains(err.Error(), "cannot reach registry") {
		t.Errorf("Pull(%s) with the registry down = %v, want a RemoteError saying it cannot reach %s", ref, err, px.Addr)
	}
	assertNothingPulled(t, s, ref, imageLayers(t, img)[0].Digest)
}

func TestPushRetriesAndFails(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t)
	img := ocitest.RandomImage(t, 2, 64<<10)
	for _, tc := range []struct {
		name  string
		rules []testenv.Rule
		want  error // nil: success
	}{
		{"500 on the manifest", []testenv.Rule{{Method: "PUT", Kind: testenv.KindManifest, Times: 1, Fault: testenv.FailWith(500)}}, nil},
		{"503 on an upload", []testenv.Rule{{Method: "PATCH", Kind: testenv.KindUpload, Times: 1, Fault: testenv.FailWith(503)}}, nil},
		{"dropped commit", []testenv.Rule{{Method: "PUT", Kind: testenv.KindUpload, Times: 1, Fault: testenv.Drop()}}, nil},
		{"401", []testenv.Rule{{Method: "POST", Kind: testenv.KindUpload, Fault: testenv.FailWith(401)}}, ErrUnauthorized},
		{"403 on the manifest", []testenv.Rule{{Method: "PUT", Kind: testenv.KindManifest, Fault: testenv.FailWith(403)}}, ErrUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			px := testenv.StartFaultProxy(t, reg.Endpoint, testenv.ProxyOptions{})
			px.Add(tc.rules...)
			s := remoteStore(t, &px.Endpoint)
			ref := px.Ref(strings.ReplaceAll(strings.ToLower(tc.name), " ", "-") + ":1")
			importAs(t, s, ref, img)
			_, err := s.Push(context.Background(), ref, "", PushOptions{})
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Push(%s) = %v, want success after a retry", ref, err)
				}
				b := remoteStore(t, &reg.Endpoint)
				if d, err := b.Pull(context.Background(), reg.Ref(ref[len(px.Addr)+1:]), PullOptions{}); err != nil || d.Digest != mustDigest(t, img) {
					t.Errorf("pull back = %v, %v", d.Digest, err)
				}
				return
			}
			var re *RemoteError
			if !errors.As(err, &re) || !errors.Is(err, tc.want) || re.Registry != px.Addr {
				t.Errorf("Push(%s) = %v, want a RemoteError wrapping %v", ref, err, tc.want)
			}
			if n := px.Count(tc.rules[0].Method, tc.rules[0].Kind); n > 3 {
				t.Errorf("%d %s requests after a %v, want no retry storm", n, tc.rules[0].Method, tc.want)
			}
		})
	}
}
