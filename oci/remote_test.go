package oci

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"minibuild/internal/testenv"
	"minibuild/oci/ocitest"
)

// Helpers of the registry tests: a TLS registry with authentication, and
// stores that reach it in-process (its CA and credentials as values).

func startRegistry(t *testing.T) *testenv.Registry {
	t.Helper()
	return testenv.StartRegistry(t, testenv.RegistryOptions{TLS: true, Auth: true})
}

// fastBackoff keeps retries quick: 3 attempts, 5ms then 10ms apart.
func fastBackoff() remote.Backoff {
	return remote.Backoff{Duration: 5 * time.Millisecond, Factor: 2, Steps: 3}
}

// endpointKeychain hands out an endpoint's credentials for its address.
type endpointKeychain struct{ addr, user, password string }

func (k endpointKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if r.RegistryStr() == k.addr && k.user != "" {
		return &authn.Basic{Username: k.user, Password: k.password}, nil
	}
	return authn.Anonymous, nil
}

func keychainFor(ep *testenv.Endpoint) authn.Keychain {
	return endpointKeychain{addr: ep.Addr, user: ep.User, password: ep.Password}
}

// remoteStore opens a fresh store that reaches ep.
func remoteStore(t *testing.T, ep *testenv.Endpoint, opts ...Option) *Store {
	t.Helper()
	tr := ep.Transport()
	t.Cleanup(tr.CloseIdleConnections)
	opts = append([]Option{WithTransport(tr), WithKeychain(keychainFor(ep)), WithRetryBackoff(fastBackoff())}, opts...)
	root := filepath.Join(t.TempDir(), "root")
	s, err := Open(root, opts...)
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

// ggcrOptions reach ep with go-containerregistry directly, as another tool.
func ggcrOptions(ep *testenv.Endpoint) []remote.Option {
	return []remote.Option{remote.WithTransport(ep.Transport()), remote.WithAuthFromKeychain(keychainFor(ep))}
}

// seedImage puts img at ref in ep's registry, as another tool would.
func seedImage(t *testing.T, ep *testenv.Endpoint, ref string, img v1.Image) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, ggcrOptions(ep)...); err != nil {
		t.Fatalf("seed %s: %v", ref, err)
	}
	return mustDigest(t, img)
}

// importAs puts img into s tagged n, through a layout import.
func importAs(t *testing.T, s *Store, n string, img v1.Image) v1.Hash {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	ocitest.WriteLayout(t, dir, ocitest.Entry{Image: img})
	importOK(t, s, dir, ImportOptions{Tag: n})
	return mustDigest(t, img)
}

// fsckClean fails t unless fsck finds no problem and no ingest is left.
func fsckClean(t *testing.T, s *Store) {
	t.Helper()
	r, err := s.Fsck(context.Background())
	if err != nil {
		t.Fatalf("Fsck() = %v", err)
	}
	if !r.OK() {
		t.Errorf("Fsck() problems: %v", r.Problems)
	}
	assertNoIngest(t, s)
}

// events collects progress reports.
type events struct {
	mu sync.Mutex
	ps []BlobProgress
}

func (e *events) add(p BlobProgress) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ps = append(e.ps, p)
}

// final returns the last status reported for each digest.
func (e *events) final() map[v1.Hash]BlobStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := map[v1.Hash]BlobStatus{}
	for _, p := range e.ps {
		m[p.Digest] = p.Status
	}
	return m
}

// count returns how many blobs ended in status.
func (e *events) count(status BlobStatus) int {
	n := 0
	for _, st := range e.final() {
		if st == status {
			n++
		}
	}
	return n
}

// imageBlobs are the config and layer digests of img.
func imageBlobs(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	hs := []v1.Hash{m.Config.Digest}
	for _, l := range m.Layers {
		hs = append(hs, l.Digest)
	}
	return hs
}

func imageLayers(t *testing.T, img v1.Image) []v1.Descriptor {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return m.Layers
}

// blobGets are the digests of the blobs GET through px, in order.
func blobGets(px *testenv.FaultProxy) []string {
	var out []string
	for _, r := range px.Requests() {
		if r.Method == http.MethodGet && r.Kind == testenv.KindBlob {
			out = append(out, r.Path[strings.LastIndexByte(r.Path, '/')+1:])
		}
	}
	return out
}

// uploads counts the requests that carry blob bytes to the registry.
func uploads(px *testenv.FaultProxy) int {
	return px.Count(http.MethodPatch, testenv.KindUpload) + px.Count(http.MethodPut, testenv.KindUpload)
}

func TestRetryable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"503", &transport.Error{StatusCode: 503}, true},
		{"500", &transport.Error{StatusCode: 500}, true},
		{"429", &transport.Error{StatusCode: 429}, true},
		{"401", &transport.Error{StatusCode: 401}, false},
		{"404", &transport.Error{StatusCode: 404}, false},
		{"reset", &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}, true},
		{"unexpected EOF", errors.Join(errors.New("read body"), io.ErrUnexpectedEOF), true},
		{"digest", ErrDigestMismatch, false},
		{"canceled", context.Canceled, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := retryable(tc.err); got != tc.want {
				t.Errorf("retryable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestNormalizeRepo(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"busybox":                   "docker.io/library/busybox",
		"me/app":                    "docker.io/me/app",
		"localhost:5000/x":          "localhost:5000/x",
		"127.0.0.1:41234/a/b":       "127.0.0.1:41234/a/b",
		"index.docker.io/library/x": "docker.io/library/x",
	} {
		got, err := normalizeRepo(in)
		if err != nil || got != want {
			t.Errorf("normalizeRepo(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"app:1", "app@sha256:" + strings.Repeat("a", 64), "UPPER/x"} {
		if got, err := normalizeRepo(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("normalizeRepo(%q) = %q, %v; want ErrInvalid", bad, got, err)
		}
	}
}

func TestInsecureRegistryPlainHTTP(t *testing.T) {
	t.Parallel()
	// A registry that is neither localhost nor a loopback address needs
	// the opt-in for plain HTTP; go-containerregistry's name.Insecure marks
	// it. The CA-less TLS case is covered by the integration tests.
	c := newRemoteClient(remoteConfig{insecure: []string{"registry.internal:5000"}})
	r, err := c.reference("registry.internal:5000/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Context().Scheme(); got != "http" {
		t.Errorf("scheme of an insecure registry = %q, want http", got)
	}
	r, err = c.reference("registry.example.com/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Context().Scheme(); got != "https" {
		t.Errorf("scheme of another registry = %q, want https", got)
	}
}
