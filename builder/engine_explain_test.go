package builder

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"minibuild/cache"
	"minibuild/exec"
)

// explainLines runs Explain and words each filesystem step like
// `minibuild explain`.
func (e *engine) explainLines(dir string, req Request) []string {
	e.t.Helper()
	req.Context = dir
	req.Dockerfile = filepath.Join(dir, "Dockerfile")
	res, err := e.b.Explain(context.Background(), req)
	if err != nil {
		e.t.Fatalf("Explain: %v", err)
	}
	var out []string
	for _, s := range res.Steps {
		if s.Step == 0 {
			continue // config only
		}
		why := "cached"
		if !s.Cached {
			why = s.Reason.String()
		}
		out = append(out, s.Name+": "+why)
	}
	return out
}

func TestExplain(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	e.busybox()
	dir := smallContext(t)
	before := e.explainLines(dir, Request{Dockerfile: writeDockerfile(t, dir, smallProject)})
	want := []string{
		"[2/5] WORKDIR /app: no previous build of this Dockerfile",
		"[3/5] COPY conf/ ./conf/: no previous build of this Dockerfile",
		"[4/5] RUN cat conf/a > /app/joined && echo built >> /app/joined: no previous build of this Dockerfile",
		"[5/5] COPY VERSION /app/VERSION: no previous build of this Dockerfile",
	}
	if !equal(before, want) {
		t.Errorf("explain before any build:\n%s\nwant\n%s", strings.Join(before, "\n"), strings.Join(want, "\n"))
	}
	e.mustBuild(dir, "", Request{})
	logs := listDir(t, filepath.Join(e.root, "cache/builds"))
	logTime := modTime(t, filepath.Join(e.root, "cache/builds", logs[len(logs)-1]))
	e.resetCounts()

	writeFile(t, filepath.Join(dir, "conf/a"), "A\n")
	got := e.explainLines(dir, Request{})
	want = []string{
		"[2/5] WORKDIR /app: cached",
		"[3/5] COPY conf/ ./conf/: input changed: conf/a (content)",
		"[4/5] RUN cat conf/a > /app/joined && echo built >> /app/joined: parent changed (step 3 was rebuilt)",
		"[5/5] COPY VERSION /app/VERSION: parent changed (step 4 was rebuilt)",
	}
	if !equal(got, want) {
		t.Errorf("explain after an edit:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if c := e.resetCounts(); len(c) != 0 {
		t.Errorf("Explain did work: %v", c)
	}
	if !modTime(t, filepath.Join(e.root, "cache/builds", logs[len(logs)-1])).Equal(logTime) {
		t.Errorf("Explain rewrote the build log")
	}

	got = e.explainLines(dir, Request{NoCache: true})
	if !strings.HasSuffix(got[0], ": rebuilt on request (--no-cache)") {
		t.Errorf("explain --no-cache = %q", got)
	}
}

func writeDockerfile(t *testing.T, dir, text string) string {
	p := filepath.Join(dir, "Dockerfile")
	writeFile(t, p, text)
	return p
}

func modTime(t *testing.T, p string) time.Time {
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime()
}

// TestNoCacheFilter rebuilds one stage on request: its steps run, and so
// does the step that copies from it; the other stage stays cached.
func TestNoCacheFilter(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	e.busybox()
	df := "FROM busybox AS gen\nRUN date +%N > /stamp\n\nFROM busybox AS other\nRUN echo other > /other\n\n" +
		"FROM busybox\nCOPY --from=other /other /other\nCOPY --from=gen /stamp /stamp\nRUN cat /stamp /other > /all\n"
	dir := t.TempDir()
	e.mustBuild(dir, df, Request{})
	res := e.mustBuild(dir, "", Request{NoCacheFilter: []string{"gen"}})
	got := map[string]bool{}
	for _, s := range res.Steps {
		if s.Step > 0 {
			got[s.Name] = s.Cached
		}
	}
	want := map[string]bool{
		"[gen 2/2] RUN date +%N > /stamp":               false,
		"[other 2/2] RUN echo other > /other":           true,
		"[stage-2 2/4] COPY --from=other /other /other": true,
		"[stage-2 3/4] COPY --from=gen /stamp /stamp":   false,
		"[stage-2 4/4] RUN cat /stamp /other > /all":    false,
	}
	for name, cached := range want {
		if c, ok := got[name]; !ok || c != cached {
			t.Errorf("%s: cached %v (present %v), want %v", name, c, ok, cached)
		}
	}
}

// TestCacheOrderLint warns when the whole context is copied before a
// dependency install that needs only the manifest.
func TestCacheOrderLint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "package.json"), "{}\n")
	writeFile(t, filepath.Join(dir, "index.js"), "\n")
	e := newEngine(t)
	e.busybox()
	df := "FROM busybox\nWORKDIR /app\nCOPY . .\nRUN npm ci || true\n"
	res, err := e.b.Explain(context.Background(), Request{Context: dir, Dockerfile: writeDockerfile(t, dir, df)})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, w := range res.Warnings {
		if strings.Contains(w.Message, "cache order") && strings.Contains(w.Message, "package.json") && w.Location.Start == 4 {
			found = true
		}
	}
	if !found {
		t.Errorf("warnings = %+v, want a cache-order warning at line 4", res.Warnings)
	}
	good := "FROM busybox\nWORKDIR /app\nCOPY package.json .\nRUN npm ci || true\nCOPY . .\n"
	res, err = e.b.Explain(context.Background(), Request{Context: dir, Dockerfile: writeDockerfile(t, dir, good)})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range res.Warnings {
		if strings.Contains(w.Message, "cache order") {
			t.Errorf("warning for a well-ordered Dockerfile: %s", w.Message)
		}
	}
}

// TestKeyMaterial checks the debug dump of every step's key.
func TestKeyMaterial(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	e.busybox()
	dir := smallContext(t)
	var buf bytes.Buffer
	_, err := e.b.Explain(context.Background(), Request{Context: dir, Dockerfile: writeDockerfile(t, dir, smallProject), KeyMaterial: &buf})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"instruction":"COPY VERSION /app/VERSION"`, "file 0644", "VERSION"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("key material lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestPrune(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	e.busybox()
	dir := smallContext(t)
	e.mustBuild(dir, smallProject, Request{Tags: []string{"app"}})
	writeFile(t, filepath.Join(dir, "VERSION"), "2\n")
	e.mustBuild(dir, "", Request{}) // untagged

	rep, err := e.b.Prune(context.Background(), PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 0 || rep.Blobs != 2 {
		t.Errorf("prune = %+v, want the untagged image's config and manifest only", rep)
	}
	e.resetCounts()
	if res := e.mustBuild(dir, "", Request{}); !res.Steps[len(res.Steps)-1].Cached {
		t.Errorf("records kept by prune no longer hit")
	}
	rep, err = e.b.Prune(context.Background(), PruneOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records == 0 || rep.Blobs == 0 {
		t.Errorf("prune --all = %+v, want records and the untagged layers removed", rep)
	}
	var left int
	e.cache.Walk(context.Background(), func(cache.Record) error { left++; return nil })
	if left != 0 {
		t.Errorf("%d records left after prune --all", left)
	}
	e.fsck()
	if err := e.b.Run(context.Background(), RunRequest{Image: "app", Args: []string{"true"}}); err != nil {
		t.Errorf("tagged image no longer runs after prune: %v", err)
	}
}

func TestRunImage(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	e.busybox()
	var out bytes.Buffer
	err := e.b.Run(context.Background(), RunRequest{Image: "busybox", Args: []string{"sh", "-c", "echo $GREETING; exit 7"}, Env: []string{"GREETING=hi"}, Stdout: &out})
	ee, ok := errors.AsType[*exec.ExitError](err)
	if !ok || ee.Code != 7 {
		t.Fatalf("Run = %v, want exit code 7", err)
	}
	if out.String() != "hi\n" {
		t.Errorf("output = %q", out.String())
	}
	if err := e.b.Run(context.Background(), RunRequest{Image: "missing"}); err == nil {
		t.Errorf("Run of a missing image succeeded")
	}
}
