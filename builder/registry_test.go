package builder

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"minibuild/cache"
	"minibuild/internal/testenv"
	"minibuild/oci"
)

// Helpers of the registry tests: a TLS registry (authentication is the
// integration tests' business, through the Docker config) behind a proxy
// that counts blob bytes and injects faults, and engines that reach it.

func startProxy(t *testing.T) *testenv.FaultProxy {
	t.Helper()
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{TLS: true})
	return testenv.StartFaultProxy(t, reg.Endpoint, testenv.ProxyOptions{})
}

// newRemoteEngine is newEngine with a store that reaches ep.
func newRemoteEngine(t *testing.T, ep *testenv.Endpoint) *engine {
	t.Helper()
	testenv.RequirePrivileged(t)
	root := t.TempDir()
	tr := ep.Transport()
	t.Cleanup(tr.CloseIdleConnections)
	store, err := oci.Open(root, oci.WithTransport(tr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cs, err := cache.Open(filepath.Join(root, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	e := &engine{t: t, root: root, store: store, cache: cs, counts: map[string]int{}}
	e.b = New(store, cs)
	e.b.trace = func(what string) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.counts[what]++
	}
	return e
}

// pushBase builds the busybox base in e and pushes it to ref.
func (e *engine) pushBase(ref string) {
	e.t.Helper()
	e.busybox()
	if _, err := e.store.Push(context.Background(), "busybox", ref, oci.PushOptions{}); err != nil {
		e.t.Fatalf("push base: %v", err)
	}
}

// warnings are the warning events of the last build.
func (e *engine) warnings() []string {
	var out []string
	for _, ev := range e.recorded() {
		if ev.Kind == EventWarning {
			out = append(out, ev.Message)
		}
	}
	return out
}

// fsckClean fails the test unless the store is consistent.
func (e *engine) fsckClean() {
	e.t.Helper()
	r, err := e.store.Fsck(context.Background())
	if err != nil {
		e.t.Fatalf("Fsck() = %v", err)
	}
	if !r.OK() {
		e.t.Errorf("Fsck() problems: %v", r.Problems)
	}
}

func allCached(t *testing.T, res *Result) {
	t.Helper()
	for _, s := range res.Steps {
		if !s.Cached {
			t.Errorf("step %q missed: %v", s.Name, s.Reason)
		}
	}
}

// remoteProject runs a RUN on the base, so rebuilding it needs the base's
// layers.
const remoteProject = `COPY conf/ /etc/app/
RUN cat /etc/app/a > /joined && echo built >> /joined
COPY VERSION /app/VERSION
`

// TestPushAndLazyBase builds FROM a registry image in a fresh store: the
// base is pulled lazily, its layer fetched because a RUN needs it; the
// image is pushed under two tags and reads back with the same digest. A
// second build that needs no layer bytes fetches none, and a third, with
// the registry gone, works offline.
func TestPushAndLazyBase(t *testing.T) {
	t.Parallel()
	px := startProxy(t)
	a := newRemoteEngine(t, &px.Endpoint)
	base := px.Ref("base:1")
	a.pushBase(base)

	b := newRemoteEngine(t, &px.Endpoint)
	dir := smallContext(t)
	df := "FROM " + base + "\n" + remoteProject
	tags := []string{px.Ref("app:1"), px.Ref("mirror/app:1")}
	res := b.mustBuild(dir, df, Request{Tags: tags, Push: true})
	if n := b.resetCounts()["fetch layer"]; n != 1 {
		t.Errorf("fetched %d layers, want 1 (the base's)", n)
	}
	var pushed []string
	for _, ev := range b.recorded() {
		if ev.Kind == EventStatus && strings.HasPrefix(ev.Message, "pushed ") {
			pushed = append(pushed, ev.Message)
		}
	}
	if len(pushed) != 2 || !strings.HasSuffix(pushed[1], "@"+res.Manifest.Digest.String()) {
		t.Errorf("push status lines = %q, want two naming %s", pushed, res.Manifest.Digest)
	}
	// A third store pulls what was pushed: same digest.
	c := newRemoteEngine(t, &px.Endpoint)
	for _, tag := range tags {
		d, err := c.store.Pull(context.Background(), tag, oci.PullOptions{})
		if err != nil || d.Digest != res.Manifest.Digest {
			t.Errorf("Pull(%s) = %v, %v; want %s", tag, d.Digest, err, res.Manifest.Digest)
		}
	}
	c.fsckClean()

	// A store that only stores the image needs no layer: nothing fetched.
	d := newRemoteEngine(t, &px.Endpoint)
	d.mustBuild(t.TempDir(), "FROM "+base+"\nENV A=1\n", Request{Tags: []string{"lazy"}})
	if n := d.resetCounts()["fetch layer"]; n != 0 {
		t.Errorf("a config-only build fetched %d layers", n)
	}
	d.fsckClean()

	// Offline: the registry is gone, the base is in the store, every
	// step is cached.
	px.Stop()
	again := b.mustBuild(dir, "", Request{Tags: []string{"local/app"}})
	allCached(t, again)
	if again.Manifest.Digest != res.Manifest.Digest {
		t.Errorf("offline rebuild = %s, want %s", again.Manifest.Digest, res.Manifest.Digest)
	}
	b.fsckClean()
}

// TestPushFailure checks that a push to a registry that is down fails
// with an error naming it, after the image is in the store.
func TestPushFailure(t *testing.T) {
	t.Parallel()
	px := startProxy(t)
	e := newRemoteEngine(t, &px.Endpoint)
	e.busybox()
	px.Stop()
	res, err := e.build(smallContext(t), "FROM busybox\n"+remoteProject, Request{Tags: []string{px.Ref("app:1")}, Outputs: []Output{{Type: "registry"}}})
	var re *oci.RemoteError
	if !errors.As(err, &re) || re.Registry != px.Addr || re.Repository != "app" {
		t.Fatalf("Build with the registry down = %v, want a *oci.RemoteError naming %s/app", err, px.Addr)
	}
	if _, rerr := e.store.Resolve(px.Ref("app:1")); rerr != nil || res == nil || res.Manifest.Digest == (v1.Hash{}) {
		t.Errorf("the image is not in the store after a failed push: %v", rerr)
	}
	e.fsckClean()
}

func TestPushNeedsTag(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	for _, req := range []Request{{Push: true}, {Outputs: []Output{{Type: "registry"}}}} {
		if _, err := e.build(t.TempDir(), "FROM scratch\n", req); err == nil || !strings.Contains(err.Error(), "-t") {
			t.Errorf("Build(%+v) = %v, want an error asking for -t", req, err)
		}
	}
}

// TestPullPolicies: missing answers from the store once the base is
// there, always follows the tag to its new image, never refuses a base
// the store lacks and says how to get it.
func TestPullPolicies(t *testing.T) {
	t.Parallel()
	px := startProxy(t)
	a := newRemoteEngine(t, &px.Endpoint)
	base := px.Ref("base:1")
	a.pushBase(base)

	b := newRemoteEngine(t, &px.Endpoint)
	dir := t.TempDir()
	df := "FROM " + base + "\nENV A=1\n"
	baseDigest := func(res *Result) string {
		_, m := b.image(res.Manifest.Digest)
		return m.Annotations["org.opencontainers.image.base.digest"]
	}
	first := baseDigest(b.mustBuild(dir, df, Request{}))

	// The tag moves to another image.
	next := a.mustBuild(t.TempDir(), "FROM busybox\nRUN touch /x\n", Request{Tags: []string{base}})
	if _, err := a.store.Push(context.Background(), base, "", oci.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	r := px.Count("GET", testenv.KindManifest) + px.Count("HEAD", testenv.KindManifest)
	if got := baseDigest(b.mustBuild(dir, "", Request{Pull: PullMissing})); got != first {
		t.Errorf("--pull=missing base = %s, want the stored %s", got, first)
	}
	if n := px.Count("GET", testenv.KindManifest) + px.Count("HEAD", testenv.KindManifest); n != r {
		t.Errorf("--pull=missing asked the registry %d times", n-r)
	}
	if got := baseDigest(b.mustBuild(dir, "", Request{Pull: PullAlways})); got != next.Manifest.Digest.String() {
		t.Errorf("--pull=always base = %s, want the new %s", got, next.Manifest.Digest)
	}

	c := newRemoteEngine(t, &px.Endpoint)
	_, err := c.build(t.TempDir(), df, Request{Pull: PullNever})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "minibuild pull") {
		t.Errorf("--pull=never without the base = %v, want ErrNotFound saying how to pull it", err)
	}
}
