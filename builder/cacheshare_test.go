package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"minibuild/cache"
	"minibuild/internal/testenv"
	"minibuild/oci"
)

// runners are two fresh stores on one registry: a has built remoteProject
// FROM a base it pushed, exporting its cache to cacheRef.
type runners struct {
	px               *testenv.FaultProxy
	a                *engine
	dir, df          string
	cacheRef, appRef string
	built            *Result // a's build
}

func newRunners(t *testing.T, extra string) *runners {
	t.Helper()
	px := startProxy(t)
	r := &runners{px: px, a: newRemoteEngine(t, &px.Endpoint), dir: smallContext(t),
		cacheRef: px.Ref("cache:main"), appRef: px.Ref("app:1")}
	base := px.Ref("base:1")
	r.a.pushBase(base)
	r.df = "FROM " + base + "\n" + remoteProject + extra
	r.built = r.a.mustBuild(r.dir, r.df, Request{Tags: []string{px.Ref("app:a")},
		CacheTo: []CacheSpec{{Type: "registry", Ref: r.cacheRef}}})
	return r
}

// fromCache is the request of a second runner using the shared cache.
func (r *runners) fromCache(push bool) Request {
	return Request{Tags: []string{r.appRef}, Push: push, CacheFrom: []CacheSpec{{Type: "registry", Ref: r.cacheRef}}}
}

// TestCacheShareRegistry is the CI fleet case: a fresh runner with the
// cache of another takes every step from it, downloads no layer (only
// manifests and configs), pushes an image with the first runner's digest
// without moving a layer, and its next build makes no request at all.
func TestCacheShareRegistry(t *testing.T) {
	t.Parallel()
	r := newRunners(t, "")
	b := newRemoteEngine(t, &r.px.Endpoint)
	r.px.ResetStats()
	res := b.mustBuild(r.dir, r.df, r.fromCache(true))
	allCached(t, res)
	if res.Manifest.Digest != r.built.Manifest.Digest {
		t.Errorf("digest from the shared cache = %s, want %s", res.Manifest.Digest, r.built.Manifest.Digest)
	}
	if c := b.resetCounts(); len(c) != 0 {
		t.Errorf("a build from the shared cache did work: %v", c)
	}
	if n := r.px.BlobBytes(); n > 64<<10 {
		t.Errorf("downloaded %d bytes of blobs, want only configs", n)
	}
	for _, s := range res.Steps {
		if s.Layer != nil && b.store.HasBlob(s.Layer.Digest) {
			t.Errorf("layer %s of %q was downloaded", s.Layer.Digest, s.Name)
		}
	}
	// The push moves the image config (a never pushed) and mounts the
	// layers from the base's and the cache's repositories.
	for _, ev := range b.recorded() {
		if ev.Kind == EventStatus && strings.HasPrefix(ev.Message, "pushing ") && ev.Message != "pushing "+res.Config.String() {
			t.Errorf("push moved a layer: %s", ev.Message)
		}
	}
	b.fsckClean()

	// Records are now local: no request, even with --cache-from.
	r.px.ResetStats()
	allCached(t, b.mustBuild(r.dir, "", r.fromCache(false)))
	if q := r.px.Requests(); len(q) != 0 {
		t.Errorf("no-op rebuild made %d requests, first %s %s", len(q), q[0].Method, q[0].Path)
	}
}

// TestCacheShareFetchesWhatRuns adds a step the cache lacks: the layers
// below it are fetched (one transfer broken midway and retried), and only
// that step runs.
func TestCacheShareFetchesWhatRuns(t *testing.T) {
	t.Parallel()
	r := newRunners(t, "")
	b := newRemoteEngine(t, &r.px.Endpoint)
	runLayer := r.built.Steps[len(r.built.Steps)-2].Layer // RUN's
	if runLayer == nil {
		t.Fatalf("steps %+v: RUN made no layer", r.built.Steps)
	}
	r.px.Add(testenv.Rule{Method: "GET", Kind: testenv.KindBlob, PathContains: runLayer.Digest.Hex, Times: 1, Fault: testenv.ResetAfter(100)})
	res := b.mustBuild(r.dir, r.df+"RUN cat /joined /app/VERSION > /all\n", r.fromCache(false))
	for i, s := range res.Steps {
		if last := i == len(res.Steps)-1; s.Cached == last {
			t.Errorf("step %q cached = %v", s.Name, s.Cached)
		}
	}
	if n := b.resetCounts()["fetch layer"]; n != 4 {
		t.Errorf("fetched %d layers, want 4 (base, COPY, RUN, COPY)", n)
	}
	retried := false
	for _, ev := range b.recorded() {
		retried = retried || ev.Kind == EventStatus && strings.HasPrefix(ev.Message, "retrying "+runLayer.Digest.String())
	}
	if !retried {
		t.Errorf("no retry reported for %s", runLayer.Digest)
	}
	b.fsckClean()
}

// TestCacheShareLayerGone: a cached layer that cannot be fetched (here its
// bytes are corrupted) turns its hit into a miss with a warning; the step
// runs and the build succeeds with the same image.
func TestCacheShareLayerGone(t *testing.T) {
	t.Parallel()
	r := newRunners(t, "")
	b := newRemoteEngine(t, &r.px.Endpoint)
	copyLayer := r.built.Steps[len(r.built.Steps)-1].Layer // COPY VERSION
	r.px.Add(testenv.Rule{Method: "GET", Kind: testenv.KindBlob, PathContains: copyLayer.Digest.Hex, Fault: testenv.CorruptAt(10)})
	res := b.mustBuild(r.dir, r.df+"RUN cat /joined /app/VERSION > /all\n", r.fromCache(false))
	var ran []string
	for _, s := range res.Steps {
		if !s.Cached {
			ran = append(ran, s.Name)
		}
	}
	if len(ran) != 2 || !strings.Contains(ran[0], "COPY VERSION") {
		t.Errorf("steps that ran = %q, want COPY VERSION and the last RUN", ran)
	}
	w := strings.Join(b.warnings(), "\n")
	if !strings.Contains(w, copyLayer.Digest.String()) || !strings.Contains(w, "running the step instead") {
		t.Errorf("warnings %q do not name %s", w, copyLayer.Digest)
	}
	b.fsckClean()
}

// TestCacheShareUnreadable checks that a cache that cannot be read, or
// cannot be trusted, is a warning and a normal build: never a failure,
// never a hit it should not give.
func TestCacheShareUnreadable(t *testing.T) {
	t.Parallel()
	r := newRunners(t, "")
	ctx := context.Background()
	a, err := r.a.store.FetchArtifact(ctx, r.cacheRef)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(a.Config)
	configHex := hex.EncodeToString(sum[:])
	// A copy whose records were edited to give other layers the keys of
	// the real ones: a poisoned cache.
	var doc cache.Export
	if err := json.Unmarshal(a.Config, &doc); err != nil {
		t.Fatal(err)
	}
	for i := range doc.Records {
		doc.Records[i].Parts.Instruction += " # poisoned"
	}
	poisoned, _ := json.Marshal(doc)
	if _, err := r.a.store.PushArtifact(ctx, r.px.Ref("cache:poisoned"), oci.ArtifactSpec{
		ConfigMediaType: cache.ExportMediaType, Config: poisoned, Blobs: a.Blobs}, oci.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, ref string
		rule      *testenv.Rule
		want      string
	}{
		{"missing", r.px.Ref("cache:nothere"), nil, "not found"},
		{"not a cache", r.px.Ref("base:1"), nil, "not a minibuild cache"},
		{"corrupt config", r.cacheRef, &testenv.Rule{Method: "GET", Kind: testenv.KindBlob, PathContains: configHex, Fault: testenv.CorruptAt(3)}, "digest"},
		{"poisoned records", r.px.Ref("cache:poisoned"), nil, "does not match its parts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newRemoteEngine(t, &r.px.Endpoint)
			if tc.rule != nil {
				r.px.Add(*tc.rule)
				defer r.px.Clear()
			}
			req := r.fromCache(false)
			req.CacheFrom[0].Ref = tc.ref
			res := b.mustBuild(r.dir, r.df, req)
			for _, s := range res.Steps {
				if s.Cached && s.Layer != nil {
					t.Errorf("step %q was a hit", s.Name)
				}
			}
			if res.Manifest.Digest != r.built.Manifest.Digest {
				t.Errorf("digest = %s, want %s (reproducible build)", res.Manifest.Digest, r.built.Manifest.Digest)
			}
			if w := strings.Join(b.warnings(), "\n"); !strings.Contains(w, tc.want) {
				t.Errorf("warnings %q do not mention %q", w, tc.want)
			}
			b.fsckClean()
		})
	}
}

// exportedRecords reads the records of the shared cache in layout dir.
func exportedRecords(t *testing.T, e *engine, dir string) []cache.Record {
	t.Helper()
	a, err := e.store.FetchArtifactLayout(context.Background(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	recs, rejected, err := cache.DecodeExport(a.Config)
	if err != nil || len(rejected) != 0 {
		t.Fatalf("DecodeExport = %v, %v", rejected, err)
	}
	return recs
}

// TestCacheShareLocalModes writes a multi-stage build's cache into OCI
// layout directories: mode=min holds the target stage's steps, mode=max
// every stage's; a fresh store reading the max cache runs nothing.
func TestCacheShareLocalModes(t *testing.T) {
	t.Parallel()
	a := newEngine(t)
	a.busybox()
	dir := smallContext(t)
	df := "FROM busybox AS deps\nRUN echo deps > /deps\nFROM busybox\nCOPY --from=deps /deps /deps\nCOPY VERSION /v\n"
	minDir, maxDir := filepath.Join(t.TempDir(), "min"), filepath.Join(t.TempDir(), "max")
	built := a.mustBuild(dir, df, Request{CacheTo: []CacheSpec{{Type: "local", Dir: minDir}, {Type: "local", Dir: maxDir, Mode: "max"}}})
	if n := len(exportedRecords(t, a, minDir)); n != 2 {
		t.Errorf("mode=min exported %d records, want 2", n)
	}
	if n := len(exportedRecords(t, a, maxDir)); n != 3 {
		t.Errorf("mode=max exported %d records, want 3", n)
	}
	for _, tc := range []struct {
		dir string
		ran int
	}{{maxDir, 0}, {minDir, 1}} {
		b := newEngine(t)
		b.busybox()
		b.resetCounts()
		res := b.mustBuild(dir, "", Request{CacheFrom: []CacheSpec{{Type: "local", Dir: tc.dir}}})
		if res.Manifest.Digest != built.Manifest.Digest {
			t.Errorf("%s: digest %s, want %s", tc.dir, res.Manifest.Digest, built.Manifest.Digest)
		}
		if n := b.resetCounts()["run"]; n != tc.ran {
			t.Errorf("%s: %d RUN steps ran, want %d", tc.dir, n, tc.ran)
		}
		b.fsckClean()
	}
}

// TestCacheExportFailure: a cache that cannot be written fails the build,
// unless ignore-error=true makes it a warning.
func TestCacheExportFailure(t *testing.T) {
	t.Parallel()
	px := startProxy(t)
	e := newRemoteEngine(t, &px.Endpoint)
	e.busybox()
	px.Stop()
	dir := smallContext(t)
	df := "FROM busybox\n" + remoteProject
	spec := CacheSpec{Type: "registry", Ref: px.Ref("cache:main")}
	_, err := e.build(dir, df, Request{CacheTo: []CacheSpec{spec}})
	var re *oci.RemoteError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "export cache") {
		t.Errorf("Build with the cache registry down = %v, want an export error from the registry", err)
	}
	spec.IgnoreError = true
	if _, err := e.build(dir, df, Request{CacheTo: []CacheSpec{spec}}); err != nil {
		t.Errorf("Build with ignore-error=true = %v", err)
	}
	if w := strings.Join(e.warnings(), "\n"); !strings.Contains(w, "ignore-error") {
		t.Errorf("warnings %q do not report the cache that was not written", w)
	}
}

func TestCacheSpecChecks(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	for _, req := range []Request{
		{CacheFrom: []CacheSpec{{Type: "gha"}}},
		{CacheFrom: []CacheSpec{{Type: "registry", Ref: "UPPER/case"}}},
		{CacheTo: []CacheSpec{{Type: "registry", Ref: "r.example/c@sha256:" + strings.Repeat("a", 64)}}},
		{CacheTo: []CacheSpec{{Type: "local"}}},
		{CacheTo: []CacheSpec{{Type: "local", Dir: "x", Mode: "all"}}},
	} {
		if _, err := e.build(t.TempDir(), "FROM scratch\n", req); err == nil {
			t.Errorf("Build(%+v) = nil error", req)
		}
	}
}
