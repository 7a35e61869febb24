package integration

import (
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildSteps builds the context ctx with args and returns its filesystem
// steps in Dockerfile order, as the build's metadata reports them.
func buildSteps(t *testing.T, e *Env, ctx string, args ...string) []stepOutcome {
	t.Helper()
	md := e.Path("md.json")
	e.MustRunIn(ctx, append(append([]string{"build", "--progress=quiet", "--metadata-file", md}, args...), ".")...)
	return readMetadataSteps(t, md)
}

// TestHistoryNeverHits: an image whose history mirrors the Dockerfile
// exactly — the very image this Dockerfile makes, built in another store
// and imported — satisfies no lookup (CVE-2024-24557: history proves
// nothing about what a step did). Only records this store wrote hit.
func TestHistoryNeverHits(t *testing.T) {
	t.Parallel()
	archive := busyboxArchive(t)
	files := map[string]string{
		"Dockerfile": "FROM busybox\nWORKDIR /app\nCOPY a.txt ./\nRUN cat a.txt > /out\nCOPY --link a.txt /linked.txt\n",
		"a.txt":      "alpha\n",
	}
	a := newBuildEnv(t, archive)
	writeContext(t, a.Path("ctx"), files)
	a.MustRunIn(a.Path("ctx"), "build", "--progress=quiet", "-t", "app", ".")
	a.MustRun("save", "app", "--format", "oci", "-o", a.Path("app.tar"))
	want := a.inspect("app").Digest

	b := newBuildEnv(t, archive)
	b.MustRun("import", a.Path("app.tar"), "-t", "app")
	writeContext(t, b.Path("ctx"), files)
	steps := buildSteps(t, b, b.Path("ctx"), "-t", "app")
	checkSteps(t, "build next to an imported image", steps, "MMMM",
		[]string{"no previous build of this Dockerfile"}, strings.NewReplacer())
	if got := b.inspect("app").Digest; got != want {
		t.Errorf("built %s, the imported image is %s: the history did not mirror the Dockerfile", got, want)
	}
	checkSteps(t, "second build", buildSteps(t, b, b.Path("ctx"), "-t", "app"), "HHHH", nil, strings.NewReplacer())
	b.Fsck()
}

// TestRacyTimestamp: a file written just before a build and changed
// again right after it, in the same second, to new content of the same
// size with its mtime put back, is read again: the COPY misses.
func TestRacyTimestamp(t *testing.T) {
	t.Parallel()
	e := newBuildEnv(t, busyboxArchive(t))
	ctx := e.Path("ctx")
	writeContext(t, ctx, map[string]string{"Dockerfile": "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /out\n"})
	for round, body := range []string{"one\n", "two\n", "six\n"} {
		// Each round writes the file, builds, changes it to the next body
		// and puts the mtime back.
		writeFile(t, ctx+"/a.txt", []byte(body))
		st, err := os.Stat(ctx + "/a.txt")
		if err != nil {
			t.Fatal(err)
		}
		checkSteps(t, "build", buildSteps(t, e, ctx, "-t", "racy"), "MM", nil, strings.NewReplacer())
		writeFile(t, ctx+"/a.txt", []byte(strings.ToUpper(body)))
		if err := os.Chtimes(ctx+"/a.txt", st.ModTime(), st.ModTime()); err != nil {
			t.Fatal(err)
		}
		checkSteps(t, "build after a same-size edit", buildSteps(t, e, ctx, "-t", "racy"), "MM",
			[]string{"input changed: a.txt (content)"}, strings.NewReplacer())
		if out := e.MustRun("run", "racy", "cat", "/out"); out != strings.ToUpper(body) {
			t.Errorf("round %d: the image has %q, want %q", round, out, strings.ToUpper(body))
		}
	}
}

// noCacheFilterDockerfile has a dependency stage, a build stage copying
// from it, and a final stage copying from the build stage.
const noCacheFilterDockerfile = `FROM busybox AS deps
RUN echo deps > /deps

FROM busybox AS build
COPY a.txt /a.txt
COPY --from=deps /deps /deps
RUN cat /a.txt /deps > /out

FROM busybox
COPY a.txt /a.txt
COPY --from=build /out /out
`

// TestNoCacheFilter: the named stages run again, and with them every
// step that reads their result; other steps stay cached. explain
// predicts exactly that.
func TestNoCacheFilter(t *testing.T) {
	t.Parallel()
	archive := busyboxArchive(t)
	forced := "rebuilt on request (--no-cache)"
	for _, tc := range []struct {
		filter  string
		want    string
		reasons []string
	}{
		{"deps", "MHMMHM", []string{forced, forced, forced, forced}},
		{"build", "HMMMHM", []string{forced, forced, forced, forced}},
		{"1", "HMMMHM", []string{forced}}, // stages by index
		{"deps,2", "MHMMMM", []string{forced}},
		{"nosuch", "HHHHHH", nil},
	} {
		t.Run(tc.filter, func(t *testing.T) {
			t.Parallel()
			s := &soundEnv{Env: newBuildEnv(t, archive)}
			s.ctx = s.Path("ctx")
			writeContext(t, s.ctx, map[string]string{"Dockerfile": noCacheFilterDockerfile, "a.txt": "alpha\n"})
			s.MustRunIn(s.ctx, "build", "--progress=quiet", "-t", "app", ".")
			args := []string{"--no-cache-filter", tc.filter}
			checkSteps(t, "explain", s.explainJSON(t, args), tc.want, tc.reasons, strings.NewReplacer())
			checkSteps(t, "build", buildSteps(t, s.Env, s.ctx, append(args, "-t", "app")...), tc.want, tc.reasons, strings.NewReplacer())
		})
	}
}

// TestCacheOrderLint: a COPY of the whole context before a RUN that only
// needs go.mod and go.sum gets a warning naming both lines and the fix;
// the well-ordered Dockerfile gets none.
func TestCacheOrderLint(t *testing.T) {
	t.Parallel()
	e := newBuildEnv(t, busyboxArchive(t))
	ctx := e.Path("ctx")
	writeContext(t, ctx, map[string]string{
		"Dockerfile":      "FROM busybox\nWORKDIR /src\nCOPY . .\nRUN echo go mod download\n",
		"Dockerfile.good": "FROM busybox\nWORKDIR /src\nCOPY go.mod go.sum ./\nRUN echo go mod download\nCOPY . .\n",
		"go.mod":          "module example.com/app\n", "go.sum": "", "main.go": "package main\n",
	})
	want := "line 4: cache order: line 3 copies the whole build context before this RUN, which only needs go.mod and go.sum: " +
		"every source change re-runs it. Copy go.mod go.sum first, RUN, then COPY the rest"
	r := e.RunIn(ctx, "build", "--progress=plain", ".")
	if r.ExitCode != 0 || !strings.Contains(r.Stderr, want) {
		t.Errorf("build lacks the warning %q: %v", want, r)
	}
	r = e.RunIn(ctx, "build", "--progress=rawjson", ".")
	var warnings []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(r.Stderr), "\n") {
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) == nil && ev["kind"] == "warning" {
			warnings = append(warnings, ev)
		}
	}
	if len(warnings) != 1 || warnings[0]["line"] != 4.0 || !strings.HasPrefix(warnings[0]["message"].(string), "cache order: ") {
		t.Errorf("rawjson warnings = %v, want one cache-order warning at line 4", warnings)
	}
	if r := e.RunIn(ctx, "build", "--progress=plain", "-f", "Dockerfile.good", "."); r.ExitCode != 0 || strings.Contains(r.Stderr, "cache order") {
		t.Errorf("well-ordered Dockerfile: %v", r)
	}
}

// pruneDockerfile makes three layers of its own, the last one big.
const pruneDockerfile = "FROM busybox\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\nRUN head -c 300000 /dev/urandom > /big\n"

// TestPruneUnreachable: once an image's tag is gone (rmi), prune removes
// its records, snapshots and blobs; another image's cache stays usable.
func TestPruneUnreachable(t *testing.T) {
	t.Parallel()
	e := newBuildEnv(t, busyboxArchive(t))
	for _, name := range []string{"one", "two"} {
		writeContext(t, e.Path(name), map[string]string{"Dockerfile": pruneDockerfile, "a.txt": name + "\n", "b.txt": name + " b\n"})
		e.MustRunIn(e.Path(name), "build", "--progress=quiet", "-t", name, ".")
	}
	if out := e.MustRun("prune"); out != "Nothing to remove.\n" {
		t.Errorf("prune with both images tagged = %q, want nothing removed", out)
	}
	snapshots := countDir(t, e.Root+"/snapshots")
	e.MustRun("rmi", "one")
	out := e.MustRun("prune")
	if !strings.Contains(out, "Deleted 3 cache records") {
		t.Errorf("prune after rmi one = %q, want one's 3 records deleted", out)
	}
	if got := countDir(t, e.Root+"/snapshots"); got != snapshots-3 {
		t.Errorf("%d snapshots after prune, want %d (one's 3 gone)", got, snapshots-3)
	}
	checkSteps(t, "rebuild of two", buildSteps(t, e, e.Path("two"), "-t", "two"), "HHH", nil, strings.NewReplacer())
	checkSteps(t, "rebuild of one", buildSteps(t, e, e.Path("one"), "-t", "one"), "MMM",
		[]string{"same key as the previous build, but its cache record is gone (pruned, or that build did not finish)"}, strings.NewReplacer())
	e.Fsck()
}

// countDir counts the entries of dir that have 64-character names.
func countDir(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if len(e.Name()) == 64 {
			n++
		}
	}
	return n
}

// TestPruneKeepStorage: --keep-storage keeps the most recently used
// records that fit and removes the others, least recently used first.
func TestPruneKeepStorage(t *testing.T) {
	t.Parallel()
	e := newBuildEnv(t, busyboxArchive(t))
	for _, name := range []string{"old", "new"} {
		writeContext(t, e.Path(name), map[string]string{"Dockerfile": pruneDockerfile, "a.txt": name + "\n", "b.txt": name + " b\n"})
		e.MustRunIn(e.Path(name), "build", "--progress=quiet", "-t", name, ".")
		time.Sleep(10 * time.Millisecond) // distinct last-use times
	}
	// Each build's layers take ~300 kB: 400 kB keeps the newer build. The
	// older build's small COPY layers would fit too, but they were used
	// less recently than its big RUN layer, which does not.
	out := e.MustRun("prune", "--keep-storage", "400kB")
	if !strings.Contains(out, "Deleted 3 cache records") {
		t.Errorf("prune --keep-storage 400kB = %q, want the older build's 3 records deleted", out)
	}
	if out := e.MustRun("prune", "--keep-storage", "1TB"); out != "Nothing to remove.\n" {
		t.Errorf("prune --keep-storage 1TB = %q", out)
	}
	checkSteps(t, "the recent build", buildSteps(t, e, e.Path("new"), "-t", "new"), "HHH", nil, strings.NewReplacer())
	checkSteps(t, "the older build", buildSteps(t, e, e.Path("old"), "-t", "old"), "MMM", nil, strings.NewReplacer())
	e.MustRun("prune", "--all")
	checkSteps(t, "after --all", buildSteps(t, e, e.Path("new"), "-t", "new"), "MMM", nil, strings.NewReplacer())
	e.Fsck()
}

// TestPruneWhileBuilding: prunes started while a build runs wait for it
// or leave it alone; the build succeeds and the store stays consistent.
func TestPruneWhileBuilding(t *testing.T) {
	t.Parallel()
	e := newBuildEnv(t, busyboxArchive(t))
	ctx := e.Path("ctx")
	writeContext(t, ctx, map[string]string{
		"Dockerfile": "FROM busybox\nCOPY a.txt /a.txt\nRUN echo started && sleep 2 && cat /a.txt > /out\nCOPY b.txt /b.txt\nRUN cat /b.txt >> /out\n",
		"a.txt":      "a\n", "b.txt": "b\n",
	})
	// A previous image, untagged, so that prune has something to remove.
	writeFile(t, ctx+"/a.txt", []byte("old\n"))
	e.MustRunIn(ctx, "build", "--progress=quiet", "-t", "old", ".")
	e.MustRun("rmi", "old")
	writeFile(t, ctx+"/a.txt", []byte("a\n"))

	cmd := e.Command(t.Context(), "build", "--progress=rawjson", "-t", "app", ".")
	cmd.Dir = ctx
	var stderr syncBuffer
	started := make(chan struct{})
	stderr.onWrite = func(s string) {
		if strings.Contains(s, `"data":"started\n"`) {
			select {
			case <-started:
			default:
				close(started)
			}
		}
	}
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buildErr := make(chan error, 1)
	go func() { buildErr <- cmd.Wait() }()
	select {
	case <-started:
	case err := <-buildErr:
		t.Fatalf("build ended before its RUN started: %v\n%s", err, stderr.String())
	}
	var wg sync.WaitGroup
	results := make([]Result, 3)
	for i, args := range [][]string{{"prune"}, {"prune", "--all"}, {"prune", "--keep-storage", "1kB"}} {
		wg.Go(func() { results[i] = e.Run(args...) })
	}
	wg.Wait()
	if err := <-buildErr; err != nil {
		t.Fatalf("build while pruning: %v\n%s", err, stderr.String())
	}
	for _, r := range results {
		if r.ExitCode != 0 {
			t.Errorf("prune while building: %v", r)
		}
	}
	e.Fsck()
	if out := e.MustRun("run", "app", "cat", "/out"); out != "a\nb\n" {
		t.Errorf("the image built while pruning has /out = %q", out)
	}
	e.MustRunIn(ctx, "build", "--progress=quiet", "-t", "app", ".")
	e.Fsck()
}

// syncBuffer collects a process's output for several goroutines, calling
// onWrite with each chunk.
type syncBuffer struct {
	mu      sync.Mutex
	b       strings.Builder
	onWrite func(string)
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Write(p)
	if s.onWrite != nil {
		s.onWrite(s.b.String())
	}
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
