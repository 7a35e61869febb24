package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// rawEvent is what the tests read of one --progress=rawjson line.
type rawEvent struct {
	Kind    string `json:"kind"`
	Vertex  int    `json:"vertex"`
	Name    string `json:"name"`
	Step    int    `json:"step"`
	Message string `json:"message"`
	Error   string `json:"error"`
	Digest  string `json:"digest"`
}

// rawEvents parses the rawjson lines of a build's standard error (the
// error message the command prints after them is skipped).
func rawEvents(t *testing.T, stderr string) []rawEvent {
	t.Helper()
	var out []rawEvent
	for _, line := range strings.Split(stderr, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var ev rawEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("rawjson line %q: %v", line, err)
		}
		out = append(out, ev)
	}
	return out
}

// storeObjects is what a failed build must leave as it was: the blobs,
// the snapshots, the step records and the image index (tags).
func (e *Env) storeObjects() map[string][]string {
	e.t.Helper()
	var records []string
	recDir := filepath.Join(e.Root, "cache", "records")
	err := filepath.WalkDir(recDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(recDir, p)
			records = append(records, rel)
		}
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		e.t.Fatal(err)
	}
	index, err := os.ReadFile(filepath.Join(e.Root, "oci", "index.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	return map[string][]string{
		"blobs":     dirNames(e.t, filepath.Join(e.Root, "oci", "blobs", "sha256")),
		"snapshots": dirNames(e.t, filepath.Join(e.Root, "snapshots")),
		"records":   records,
		"index":     {string(index)},
	}
}

// dirNames lists the names in dir, sorted; none for a missing dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, d := range entries {
		names = append(names, d.Name())
	}
	return names
}

// leftovers lists what of e's builds is still alive on the machine: a
// mount whose path or options name the store root, in any process's mount
// table (a RUN sandbox's overlay has its lowerdirs and upperdir under the
// root, so this finds the sandbox's processes, as well as a mount leaked
// into the host's namespace); any process whose command line names the
// root (a minibuild of this test); and any process whose working
// directory is in e's scratch directory, where [Env.runIn] starts
// minibuild (a sandbox init started ahead of its step, which has no
// mount yet, inherits it). Other tests' builds on the machine are not
// counted.
func (e *Env) leftovers() []string {
	e.t.Helper()
	self := strconv.Itoa(os.Getpid())
	root := []byte(e.Root + "/")
	pids, err := os.ReadDir("/proc")
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, p := range pids {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		proc := filepath.Join("/proc", p.Name())
		cmdline, _ := os.ReadFile(filepath.Join(proc, "cmdline"))
		mounts, _ := os.ReadFile(filepath.Join(proc, "mountinfo"))
		cwd, _ := os.Readlink(filepath.Join(proc, "cwd"))
		// /proc/self is this test: it has no such mount, its command
		// line does not name the root, it runs elsewhere.
		switch {
		case bytes.Contains(mounts, root) && p.Name() == self:
			out = append(out, "a mount of the store in the host's namespace")
		case bytes.Contains(mounts, root), bytes.Contains(cmdline, []byte(e.Root)),
			cwd == e.Dir || strings.HasPrefix(cwd, e.Dir+"/"):
			out = append(out, fmt.Sprintf("pid %s: %s", p.Name(), bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
		}
	}
	return out
}

// TestLeftoversSeesSandbox checks the checker the tests rely on: while
// a RUN runs, [Env.leftovers] lists the build and its sandbox; after
// SIGINT, nothing.
func TestLeftoversSeesSandbox(t *testing.T) {
	t.Parallel()
	e := newBuildEnv(t, busyboxArchive(t))
	ctx := e.Path("ctx")
	writeContext(t, ctx, map[string]string{"Dockerfile": "FROM busybox\nRUN echo started && sleep 600\n"})
	cmd := e.Command(t.Context(), "build", "--progress=rawjson", ctx)
	cmd.Dir = e.Dir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var during []string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"data":"started\n"`) {
			during = e.leftovers()
			cmd.Process.Signal(syscall.SIGINT)
			break
		}
	}
	io.Copy(io.Discard, stderr)
	cmd.Wait()
	// minibuild itself, and sleep: PID 1 of the sandbox (the init execs
	// the shell, which execs the last command).
	if len(during) < 2 || !slices.ContainsFunc(during, func(s string) bool { return strings.Contains(s, "sleep 600") }) {
		t.Errorf("during the RUN, leftovers() = %q, want minibuild and the sandbox's sleep", during)
	}
	if left := e.leftovers(); len(left) > 0 {
		t.Errorf("left after SIGINT:\n%s", strings.Join(left, "\n"))
	}
}

// TestParallelFailingStages builds, with --jobs 2, two stages that each
// fail and a last stage that copies from both. The build exits 1 with one
// error, the first failure's: progress shows one ERROR, the other step is
// CANCELED (or never started), the message names one step. Nothing is
// left running or mounted, and the store is as it was.
func TestParallelFailingStages(t *testing.T) {
	t.Parallel()
	e := newBuildEnv(t, busyboxArchive(t))
	warm := e.Path("warm")
	writeContext(t, warm, map[string]string{"Dockerfile": "FROM busybox\nRUN true\n"})
	e.MustRun("build", "--progress=quiet", warm) // the base's snapshot
	before := e.storeObjects()

	const finalStage = "\nFROM busybox\nCOPY --from=a /etc/passwd /a\nCOPY --from=b /etc/passwd /b\n"
	for _, tc := range []struct {
		name, a, b string
		first      []int // the exit codes that may be the failure
	}{
		// Both fail at once: either may be first, never both.
		{"at once", "RUN exit 3", "RUN exit 4", []int{3, 4}},
		// b would run for minutes: a's failure must stop it.
		{"one long", "RUN exit 3", "RUN sleep 600; exit 4", []int{3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := e.Path("ctx-" + strings.ReplaceAll(tc.name, " ", "-"))
			df := "FROM busybox AS a\n" + tc.a + "\n\nFROM busybox AS b\n" + tc.b + "\n" + finalStage
			writeContext(t, ctx, map[string]string{"Dockerfile": df})
			r := e.runIn("build", "--jobs", "2", "--progress=plain", ctx)
			if r.ExitCode != 1 {
				t.Fatalf("exit %d, want 1: %v", r.ExitCode, r)
			}
			checkOneFailure(t, r, tc.first)
			if left := e.leftovers(); len(left) > 0 {
				t.Errorf("left after the build:\n%s", strings.Join(left, "\n"))
			}
			if diff := cmp.Diff(before, e.storeObjects()); diff != "" {
				t.Errorf("the failed build changed the store (-before +after):\n%s", diff)
			}
			for _, d := range []string{"tmp", "ingest"} {
				if names := dirNames(t, filepath.Join(e.Root, d)); len(names) > 0 {
					t.Errorf("%s/ holds %q after the build", d, names)
				}
			}
			e.Fsck()
		})
	}
}

// Lines of a failed build's plain progress and message.
var (
	// stepError is the first line of a step failure's message.
	stepError   = regexp.MustCompile(`(?m)^step 2/2 \(\S*Dockerfile:(\d+)\) RUN (?:sleep 600; )?exit (\d): exit code (\d)$`)
	plainError  = regexp.MustCompile(`^#\d+ ERROR: `)
	plainCancel = regexp.MustCompile(`^#\d+ CANCELED$`)
)

// checkOneFailure checks the plain progress and message of a build in
// which one of two RUN steps failed first with an exit code in first.
func checkOneFailure(t *testing.T, r Result, first []int) {
	t.Helper()
	var errLines, cancelled []string
	for _, l := range strings.Split(r.Stderr, "\n") {
		switch {
		case plainError.MatchString(l):
			errLines = append(errLines, l)
		case plainCancel.MatchString(l):
			cancelled = append(cancelled, l)
		}
	}
	if len(errLines) != 1 || len(cancelled) > 1 {
		t.Errorf("progress has %d ERROR and %d CANCELED lines, want 1 and at most 1:\n%s", len(errLines), len(cancelled), r.Stderr)
	}
	msgs := stepError.FindAllStringSubmatch(r.Stderr, -1)
	// The progress line carries the message after "ERROR: "; the
	// command prints it once more, with the excerpt.
	if len(msgs) != 1 || len(errLines) != 1 || !strings.HasSuffix(errLines[0], msgs[0][0]) {
		t.Fatalf("want one step failure message, repeated by the ERROR line:\n%s", r.Stderr)
	}
	m := msgs[0]
	code, _ := strconv.Atoi(m[3])
	if !slices.Contains(first, code) || m[2] != m[3] {
		t.Errorf("failure %q: exit code %d, want one of %v", m[0], code, first)
	}
	if line := map[string]string{"3": "2", "4": "5"}[m[3]]; m[1] != line {
		t.Errorf("failure %q names line %s, want %s", m[0], m[1], line)
	}
	if strings.Count(r.Stderr, "exit code") != 2 {
		t.Errorf("more than one failure reported:\n%s", r.Stderr)
	}
}

// raceDockerfiles are builds that overlap: all start from busybox, two
// read a shared stage, two a stage keyed by the round (so every round
// makes new layers, in several processes at once), most have COPY --link
// steps and RUN steps. uses says whether the image depends on ROUND.
var raceDockerfiles = []struct {
	text string
	uses bool
}{
	{`FROM busybox AS shared
RUN echo shared > /shared
FROM busybox
COPY --link f1 /data/f1
COPY --from=shared /shared /shared
RUN cat /shared /data/f1 > /out
`, false},
	{`FROM busybox AS perround
ARG ROUND
RUN echo "round $ROUND" > /round
FROM busybox
COPY --link d/ /data/d/
COPY --from=perround /round /round
RUN cat /round /data/d/* > /out
COPY --link f2 /data/f2
`, true},
	{`FROM busybox AS shared
RUN echo shared > /shared
FROM busybox AS perround
ARG ROUND
RUN echo "round $ROUND" > /round
FROM shared
COPY --from=perround /round /round
COPY --link f1 /data/f1
COPY --link f2 /data/f2
RUN ls -lR /data > /listing
`, true},
	{`FROM busybox AS x
COPY --link d/ /d/
RUN wc -c /d/* > /wc
FROM busybox AS shared
RUN echo shared > /shared
FROM shared
COPY --from=x /wc /wc
WORKDIR /app
RUN echo done > /app/done
`, false},
}

// TestConcurrentBuildsOneStore runs 8 minibuild processes at once on one
// store, building overlapping Dockerfiles (two processes per Dockerfile,
// each tagging its image), for 20 rounds (100 with MINIBUILD_STRESS=1);
// every 10 rounds the cache is pruned, so that the next round makes every
// object again, concurrently. Every build succeeds, fsck finds the store
// sound after every round, identical inputs give identical images —
// across processes, and across rounds for the Dockerfiles that do not
// read the round — and no process or mount is left.
func TestConcurrentBuildsOneStore(t *testing.T) {
	t.Parallel()
	rounds, procs := 20, 8
	if os.Getenv("MINIBUILD_STRESS") != "" {
		rounds = 100
	}
	e := newBuildEnv(t, busyboxArchive(t))
	ctx := e.Path("ctx")
	files := map[string]string{"f1": "one\n", "f2": "two\n", "d/a": "a\n", "d/b": "bb\n"}
	for i, df := range raceDockerfiles {
		files[fmt.Sprintf("Dockerfile.%d", i)] = df.text
	}
	writeContext(t, ctx, files)
	seen := map[string]string{} // inputs → image digest
	for round := range rounds {
		if round > 0 && round%10 == 0 {
			e.MustRun("prune", "--all")
		}
		results := make([]Result, procs)
		var wg sync.WaitGroup
		for i := range procs {
			args := []string{"build", "-q", "--build-arg", fmt.Sprintf("ROUND=%d", round),
				"-f", filepath.Join(ctx, fmt.Sprintf("Dockerfile.%d", i%len(raceDockerfiles))),
				"-t", fmt.Sprintf("race-%d", i%len(raceDockerfiles)), ctx}
			wg.Go(func() { results[i] = e.runIn(args...) })
		}
		wg.Wait()
		for i, r := range results {
			if r.ExitCode != 0 {
				t.Fatalf("round %d, build %d: %v", round, i, r)
			}
			v := i % len(raceDockerfiles)
			inputs := fmt.Sprintf("Dockerfile.%d", v)
			if raceDockerfiles[v].uses {
				inputs += fmt.Sprintf(" ROUND=%d", round)
			}
			digest := strings.TrimSpace(r.Stdout)
			if prev, ok := seen[inputs]; ok && prev != digest {
				t.Errorf("round %d, build %d: %s made %s, before %s", round, i, inputs, digest, prev)
			}
			seen[inputs] = digest
		}
		e.Fsck()
	}
	if left := e.leftovers(); len(left) > 0 {
		t.Errorf("left after the builds:\n%s", strings.Join(left, "\n"))
	}
}

// runIn runs minibuild args in e's scratch directory, where
// [Env.leftovers] looks for what it leaves behind. It is safe in any
// goroutine: it never fails the test itself (a command that cannot start
// gets exit code -1).
func (e *Env) runIn(args ...string) Result {
	cmd := e.Command(e.t.Context(), args...)
	cmd.Dir = e.Dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := Result{Args: args, Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: -1}
	if cmd.ProcessState != nil {
		r.ExitCode = cmd.ProcessState.ExitCode()
	} else {
		r.Stderr += err.Error()
	}
	return r
}
