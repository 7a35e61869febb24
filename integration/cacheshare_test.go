package integration

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"minibuild/internal/testenv"
)

// Shared build caches between fresh stores ("runners") through a real
// registry (TLS, htpasswd), driven through the binary with the registry's
// Docker config and CA in the environment.

// cacheFleet is a registry behind a counting proxy, and the busybox base
// pushed to it as base:1 by a first store.
type cacheFleet struct {
	px   *testenv.FaultProxy
	reg  *testenv.Registry
	env  []string
	base string
}

func newCacheFleet(t *testing.T) *cacheFleet {
	t.Helper()
	archive := busyboxArchive(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{TLS: true, Auth: true})
	px := testenv.StartFaultProxy(t, reg.Endpoint, testenv.ProxyOptions{})
	f := &cacheFleet{px: px, reg: reg, env: px.Env(), base: px.Ref("base:1")}
	e := newBuildEnv(t, archive)
	e.MustRun("tag", "busybox", f.base)
	regMustRun(e, f.env, "push", f.base)
	return f
}

// build runs a build in e with the fleet's environment and returns the
// image digest, read from --metadata-file e.Path("build-metadata.json").
func (f *cacheFleet) build(e *Env, dir string, args ...string) (string, Result) {
	e.t.Helper()
	md := e.Path("build-metadata.json")
	r := regRun(e, f.env, append(append([]string{"build", "--progress=plain", "--metadata-file", md}, args...), dir)...)
	if r.ExitCode != 0 {
		e.t.Fatalf("%v", r)
	}
	var m struct {
		Digest string `json:"containerimage.digest"`
	}
	if err := json.Unmarshal(readFile(e.t, md), &m); err != nil || m.Digest == "" {
		e.t.Fatalf("read %s: %v", md, err)
	}
	return m.Digest, r
}

// corpus02 is bench/corpus/02-many-files in a temp dir, FROM rewritten
// to base. With full, its data comes from its gen.sh (~300 MB, 20,000
// small files: about 20 s to generate here); otherwise from smallCorpus02,
// the same shape at a tenth of the size.
func corpus02(t *testing.T, base string, full bool) string {
	t.Helper()
	src := repoPath(t, "bench", "corpus", "02-many-files")
	dir := filepath.Join(t.TempDir(), "ctx")
	if full {
		testenv.RequireTool(t, "python3")
		cmd := exec.Command("bash", filepath.Join(src, "gen.sh"), dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gen.sh: %v\n%s", err, out)
		}
	} else {
		smallCorpus02(t, dir)
	}
	for _, name := range []string{".dockerignore", "app.conf"} {
		writeFile(t, filepath.Join(dir, name), readFile(t, filepath.Join(src, name)))
	}
	df := strings.Replace(string(readFile(t, filepath.Join(src, "Dockerfile"))), "FROM busybox", "FROM "+base, 1)
	if !strings.Contains(df, "FROM "+base) {
		t.Fatalf("corpus 02's Dockerfile has no FROM busybox line")
	}
	writeFile(t, filepath.Join(dir, "Dockerfile"), []byte(df))
	return dir
}

// smallCorpus02 writes what gen.sh writes, at a tenth of the size:
// small/pNN/qN/fNNN.txt (2,000 files of 64 B to 8 KiB, in 20 dirs),
// large/blob0.bin (24 MiB), and a *.tmp file .dockerignore excludes.
func smallCorpus02(t *testing.T, dir string) {
	t.Helper()
	var key [32]byte
	r := rand.New(rand.NewChaCha8(key))
	for a := range 2 {
		for b := range 10 {
			sub := filepath.Join(dir, "small", fmt.Sprintf("p%02d", a), fmt.Sprintf("q%d", b))
			if err := os.MkdirAll(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			for i := range 100 {
				body := make([]byte, 64+r.IntN(8192-64+1))
				for j := range body {
					body[j] = byte(r.Uint32())
				}
				writeFile(t, filepath.Join(sub, fmt.Sprintf("f%03d.txt", i)), body)
			}
		}
	}
	writeFile(t, filepath.Join(dir, "small", "p00", "junk0.tmp"), []byte("ignored\n"))
	if err := os.Mkdir(filepath.Join(dir, "large"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "large", "blob0.bin"), randomBytes(2, 24<<20))
}

// TestCacheShareTwoRunners is the CI fleet of issue 8: runner A builds
// corpus 02 FROM a registry base and exports its cache; runner B, a fresh
// store with the same checkout, builds with --cache-from and --push: every
// step is a hit (the RUN would need its lowerdirs if it missed), B
// downloads at most 1 MB of blob data, and the image it pushes has A's
// digest. The full 300 MB corpus runs with MINIBUILD_STRESS=1 (about a
// minute, a third of it generating the data); by default a tenth of it.
func TestCacheShareTwoRunners(t *testing.T) {
	t.Parallel()
	f := newCacheFleet(t)
	dir := corpus02(t, f.base, os.Getenv("MINIBUILD_STRESS") != "")
	cacheRef := f.px.Ref("cache/corpus02:main")

	a := NewEnv(t)
	aDigest, _ := f.build(a, dir, "-t", f.px.Ref("app:a"), "--cache-to", "type=registry,ref="+cacheRef+",mode=max")

	b := NewEnv(t)
	f.px.ResetStats()
	appRef := f.px.Ref("app:b")
	bDigest, r := f.build(b, dir, "--cache-from", "type=registry,ref="+cacheRef, "--push", "-t", appRef, "--expect-cached")
	if bDigest != aDigest {
		t.Errorf("runner B built %s, want runner A's %s", bDigest, aDigest)
	}
	if n := f.px.BlobBytes(); n > 1<<20 {
		t.Errorf("runner B downloaded %d bytes of blob data, want ≤ 1 MB", n)
	}
	t.Logf("runner B downloaded %d bytes of blob data", f.px.BlobBytes())
	if warned(r.Stderr) {
		t.Errorf("runner B warned:\n%s", r.Stderr)
	}
	b.Fsck()

	// What B pushed reads back: skopeo, and a pull into a fresh store.
	skopeo := testenv.RequireTool(t, "skopeo")
	args := append([]string{"inspect"}, f.reg.SkopeoArgs()...)
	raw, err := exec.Command(skopeo, append(args, "docker://"+f.reg.Ref("app:b"))...).Output()
	var si struct{ Digest string }
	if err != nil || json.Unmarshal(raw, &si) != nil || si.Digest != aDigest {
		t.Errorf("skopeo inspect = %s (%v), want digest %s", raw, err, aDigest)
	}
	c := NewEnv(t)
	if got := finalDigest(t, regMustRun(c, f.env, "pull", appRef)); got != aDigest {
		t.Errorf("pull %s = %s, want %s", appRef, got, aDigest)
	}
	c.Fsck()
}

// smallProject is a context whose last RUN needs every layer below it.
func smallProject(t *testing.T, base string, extra string) string {
	t.Helper()
	dir := t.TempDir()
	writeContext(t, dir, map[string]string{
		"Dockerfile": "FROM " + base + "\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\nCOPY data/ /data/\n" + extra,
		"a.txt":      "hello\n",
		"data/x":     string(randomBytes(1, 300<<10)),
	})
	return dir
}

// metadataSteps reads the per-step cache report of --metadata-file.
func metadataSteps(t *testing.T, path string) (cached, ran int) {
	t.Helper()
	var md struct {
		Steps []struct {
			Name   string `json:"name"`
			Cached bool   `json:"cached"`
			Key    string `json:"key"`
		} `json:"minibuild.steps"`
	}
	if err := json.Unmarshal(readFile(t, path), &md); err != nil {
		t.Fatal(err)
	}
	for _, s := range md.Steps {
		if s.Key == "" {
			continue // config-only steps
		}
		if s.Cached {
			cached++
		} else {
			ran++
		}
	}
	return cached, ran
}

// TestCacheShareFaults runs a runner with --cache-from through a proxy
// that fails requests: each case ends in success after retries, or in a
// normal build with a warning, never a wrong hit; fsck stays clean.
func TestCacheShareFaults(t *testing.T) {
	t.Parallel()
	f := newCacheFleet(t)
	dir := smallProject(t, f.base, "")
	cacheRef := f.px.Ref("cache:small")
	a := NewEnv(t)
	aDigest, _ := f.build(a, dir, "-t", "app", "--cache-to", "type=registry,ref="+cacheRef)
	cacheConfig := artifactConfigDigest(t, f, cacheRef)
	dataLayer := lastLayer(t, a, "app") // COPY data/: 300 KB that do not compress

	for _, tc := range []struct {
		name    string
		rules   []testenv.Rule
		from    string
		extra   string // more Dockerfile: a step that misses and needs the layers
		cached  int
		warning string // in stderr, or no warning at all
		out     string // in the progress output
	}{
		{"5xx then ok", []testenv.Rule{{Method: "GET", Kind: testenv.KindManifest, PathContains: "/cache/", Times: 1, Fault: testenv.FailWith(500)}}, cacheRef, "", 3, "", ""},
		{"missing cache", nil, f.px.Ref("cache:none"), "", 0, "not found", ""},
		{"corrupt config", []testenv.Rule{{Method: "GET", Kind: testenv.KindBlob, PathContains: cacheConfig, Fault: testenv.CorruptAt(2)}}, cacheRef, "", 0, "digest mismatch", ""},
		{"reset mid-layer", []testenv.Rule{{Method: "GET", Kind: testenv.KindBlob, PathContains: dataLayer, Times: 1, Fault: testenv.ResetAfter(20 << 10)}}, cacheRef, "RUN ls /data > /list\n", 3, "", "retrying sha256:" + dataLayer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewEnv(t)
			f.px.Add(tc.rules...)
			defer f.px.Clear()
			ctxDir := dir
			if tc.extra != "" {
				ctxDir = smallProject(t, f.base, tc.extra)
			}
			digest, r := f.build(b, ctxDir, "--cache-from", "type=registry,ref="+tc.from)
			cached, _ := metadataSteps(t, b.Path("build-metadata.json"))
			t.Logf("%s", r.Stderr)
			if cached != tc.cached {
				t.Errorf("%d steps cached, want %d:\n%s", cached, tc.cached, r.Stderr)
			}
			if tc.extra == "" && digest != aDigest {
				t.Errorf("digest %s, want %s", digest, aDigest)
			}
			if tc.warning != "" && !strings.Contains(r.Stderr, tc.warning) {
				t.Errorf("stderr does not warn about %q:\n%s", tc.warning, r.Stderr)
			}
			if tc.warning == "" && warned(r.Stderr) {
				t.Errorf("unexpected warning:\n%s", r.Stderr)
			}
			if !strings.Contains(r.Stderr, tc.out) {
				t.Errorf("progress does not say %q:\n%s", tc.out, r.Stderr)
			}
			b.Fsck()
		})
	}
}

// lastLayer is the digest of the last layer of image ref in e's store.
func lastLayer(t *testing.T, e *Env, ref string) string {
	t.Helper()
	var insp []struct {
		Manifest struct {
			Layers []struct{ Digest string }
		}
	}
	if err := json.Unmarshal([]byte(e.MustRun("inspect", ref)), &insp); err != nil || len(insp) != 1 || len(insp[0].Manifest.Layers) == 0 {
		t.Fatalf("inspect %s: %v", ref, err)
	}
	l := insp[0].Manifest.Layers
	return strings.TrimPrefix(l[len(l)-1].Digest, "sha256:")
}

// artifactConfigDigest is the hex digest of the config of the artifact
// ref, read with skopeo.
func artifactConfigDigest(t *testing.T, f *cacheFleet, ref string) string {
	t.Helper()
	skopeo := testenv.RequireTool(t, "skopeo")
	args := append([]string{"inspect", "--raw"}, f.px.SkopeoArgs()...)
	raw, err := exec.Command(skopeo, append(args, "docker://"+ref)...).Output()
	var m struct {
		Config struct{ Digest string }
	}
	if err != nil || json.Unmarshal(raw, &m) != nil || !strings.HasPrefix(m.Config.Digest, "sha256:") {
		t.Fatalf("skopeo inspect --raw %s = %s (%v)", ref, raw, err)
	}
	return strings.TrimPrefix(m.Config.Digest, "sha256:")
}

// TestOfflineRebuild: a build FROM a registry image, then the registry
// stops; the rebuild with --pull=missing makes no request and takes every
// step from the cache.
func TestOfflineRebuild(t *testing.T) {
	t.Parallel()
	f := newCacheFleet(t)
	dir := smallProject(t, f.base, "")
	e := NewEnv(t)
	first, _ := f.build(e, dir, "-t", "app")
	f.reg.Stop()
	f.px.ResetStats()
	again, r := f.build(e, dir, "-t", "app", "--pull=missing", "--expect-cached")
	if again != first {
		t.Errorf("offline rebuild = %s, want %s", again, first)
	}
	if q := f.px.Requests(); len(q) != 0 {
		t.Errorf("offline rebuild made %d requests (first %s %s):\n%s", len(q), q[0].Method, q[0].Path, r.Stderr)
	}
	e.Fsck()
}

// randomBytes are size incompressible bytes, the same for the same seed.
func randomBytes(seed byte, size int) []byte {
	b := make([]byte, size)
	var key [32]byte
	key[0] = seed
	rand.NewChaCha8(key).Read(b)
	return b
}

// warned reports whether a build's progress output lists warnings.
func warned(stderr string) bool { return warningsLine.MatchString(stderr) }

var warningsLine = regexp.MustCompile(`(?m)^\d+ warnings?:$`)
