package integration

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// writeContext writes files (name → content) under dir.
func writeContext(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := dir + "/" + name
		if err := os.MkdirAll(p[:strings.LastIndex(p, "/")], 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, p, []byte(body))
	}
}

// errorLine matches the first line of a Dockerfile error: the file and
// line ("Dockerfile:3: …", "step 2/3 (Dockerfile:3) …").
var errorLine = regexp.MustCompile(`^(?:step \d+/\d+ \()?Dockerfile:(\d+)(?:-\d+)?[:)] `)

// excerptLine matches the numbered Dockerfile lines under the error.
var excerptLine = regexp.MustCompile(`^\s+\d+ \| (>>>|   )`)

// TestBuildBadInput: each bad Dockerfile or flag fails with exit 1 and one
// error line naming the Dockerfile line (followed only by the excerpt),
// and leaves the store as it was.
func TestBuildBadInput(t *testing.T) {
	t.Parallel()
	archive := busyboxArchive(t)
	tests := []struct {
		name       string
		dockerfile string
		files      map[string]string
		args       []string
		line       string // the Dockerfile line the error names; "" for none
		mention    string // what the first line must contain
	}{
		{name: "unknown instruction", dockerfile: "FROM busybox\nCOPYY a.txt /\n", line: "2", mention: "COPYY"},
		{name: "syntax error", dockerfile: "FROM busybox\nEXPOSE\n", line: "2", mention: "EXPOSE"},
		{name: "unknown flag", dockerfile: "FROM busybox\nCOPY --bogus=1 a.txt /\n", line: "2", mention: "bogus"},
		{name: "missing COPY source", dockerfile: "FROM busybox\nCOPY missing.txt /\n", line: "2", mention: "missing.txt"},
		{name: "COPY source outside the context", dockerfile: "FROM busybox\nCOPY ../outside.txt /\n", line: "2", mention: "outside.txt"},
		{name: "COPY through a symlink out of the context", dockerfile: "FROM busybox\nCOPY escape/passwd /\n", line: "2", mention: "escape"},
		{name: "unknown stage index", dockerfile: "FROM busybox AS a\nFROM busybox\nCOPY --from=5 /x /x\n", line: "3", mention: "5"},
		{name: "cyclic stages", dockerfile: "FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\nCOPY --from=a /y /y\n", mention: "a"},
		{name: "target not found", dockerfile: "FROM busybox AS a\nCOPY a.txt /\n", args: []string{"--target", "nosuch"}, mention: "nosuch"},
		{name: "bad chmod", dockerfile: "FROM busybox\nCOPY --chmod=abc a.txt /\n", line: "2", mention: "abc"},
		{name: "dockerignore excludes everything", dockerfile: "FROM busybox\nCOPY a.txt /\n", files: map[string]string{".dockerignore": "*\n"}, line: "2", mention: "a.txt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newBuildEnv(t, archive)
			ctx := e.Path("ctx")
			writeContext(t, ctx, map[string]string{"Dockerfile": tc.dockerfile, "a.txt": "a\n"})
			writeContext(t, ctx, tc.files)
			writeFile(t, e.Path("outside.txt"), []byte("outside\n"))
			if err := os.Symlink("/etc", ctx+"/escape"); err != nil {
				t.Fatal(err)
			}
			before := layoutState(t, e.Root)

			r := e.RunIn(ctx, append(append([]string{"build", "--progress=quiet", "--pull=never", "-t", "bad"}, tc.args...), ".")...)
			lines := strings.Split(strings.TrimRight(r.Stderr, "\n"), "\n")
			if r.ExitCode != 1 || !strings.Contains(lines[0], tc.mention) {
				t.Fatalf("want exit 1 and an error naming %q: %v", tc.mention, r)
			}
			if tc.line != "" {
				m := errorLine.FindStringSubmatch(lines[0])
				if m == nil || m[1] != tc.line {
					t.Errorf("first line %q does not name Dockerfile line %s", lines[0], tc.line)
				}
			} else if !strings.Contains(lines[0], "Dockerfile") {
				t.Errorf("first line %q does not name the Dockerfile", lines[0])
			}
			for _, l := range lines[1:] {
				if !excerptLine.MatchString(l) {
					t.Errorf("stderr line %q is neither the error nor the Dockerfile excerpt:\n%s", l, r.Stderr)
				}
			}
			if diff := cmp.Diff(before, layoutState(t, e.Root)); diff != "" {
				t.Errorf("failed build changed the store (-before +after):\n%s", diff)
			}
			e.Fsck()
		})
	}
}

func TestBuildUsageErrors(t *testing.T) {
	t.Parallel()
	e := NewEnv(t)
	for _, args := range [][]string{
		{"build", "--bogus", "."},
		{"build", "--progress=fancy", "."},
		{"build", "-o", "type=tar,dest=x", "."},
		{"build"},
		{"build", "a", "b"},
		{"--pull=sometimes", "."},
	} {
		if r := e.Run(args...); r.ExitCode != 2 {
			t.Errorf("want a usage error (exit 2): %v", r)
		}
	}
}

// TestBuildReproducible: the same example built into fresh stores, from
// copies whose files have different mtimes, gives the same image digest.
func TestBuildReproducible(t *testing.T) {
	t.Parallel()
	archive := busyboxArchive(t)
	for _, name := range []string{"hello", "multistage", "add-archive", "heredocs", "copy-link"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var digests []string
			for _, mtime := range []time.Time{exampleEpoch(), exampleEpoch(), time.Now().Add(-time.Hour)} {
				e := newBuildEnv(t, archive)
				_, r := buildExample(t, e, name, mtime, "-q")
				if r.ExitCode != 0 {
					t.Fatalf("build: %v", r)
				}
				digests = append(digests, strings.TrimSpace(r.Stdout))
			}
			if digests[0] != digests[1] || digests[0] != digests[2] || !strings.HasPrefix(digests[0], "sha256:") {
				t.Errorf("digests of examples/%s (fresh store; fresh store; other mtimes) = %q, want three equal", name, digests)
			}
		})
	}
}

// TestBusyboxBaseReproducible: the demo's base, made in two fresh stores,
// is the same image.
func TestBusyboxBaseReproducible(t *testing.T) {
	t.Parallel()
	a := newBuildEnv(t, busyboxArchive(t)).inspect("busybox").Digest
	b := newBuildEnv(t, busyboxArchive(t)).inspect("busybox").Digest
	if a != b || a == "" {
		t.Errorf("busybox base digests %q and %q, want equal", a, b)
	}
}

// TestBuildCacheAndExplain walks the teaching path of the demo: a rebuild
// is all cached, a touch changes nothing, an edit makes exactly the
// steps from the edited COPY on miss, and explain names the file.
func TestBuildCacheAndExplain(t *testing.T) {
	t.Parallel()
	e := newBuildEnv(t, busyboxArchive(t))
	ctx := e.Path("ctx")
	copyExample(t, "hello", ctx, exampleEpoch())
	build := func(extra ...string) Result {
		return e.RunIn(ctx, append(append([]string{"build", "--progress=plain", "-t", "hello"}, extra...), ".")...)
	}
	first := build("-q")
	if first.ExitCode != 0 {
		t.Fatalf("first build: %v", first)
	}
	second := build("-q", "--expect-cached", "--explain")
	if second.ExitCode != 0 || !strings.HasPrefix(second.Stdout, first.Stdout) {
		t.Fatalf("second build: want all cached, same digest %s: %v", first.Stdout, second)
	}
	if !strings.Contains(second.Stdout, "All 3 steps cached") {
		t.Errorf("build --explain of a no-op build:\n%s", second.Stdout)
	}
	now := time.Now()
	os.Chtimes(ctx+"/greeting.txt", now, now)
	if r := build("--expect-cached"); r.ExitCode != 0 {
		t.Errorf("a touched file broke the cache: %v", r)
	}

	writeFile(t, ctx+"/greeting.txt", []byte("Hello again!\n"))
	explain := e.MustRunIn(ctx, "explain", ".")
	for _, want := range []string{
		"  cached   step 2/4 WORKDIR /app\n",
		"  rebuilt  step 3/4 COPY greeting.txt .: input changed: greeting.txt (content)\n",
		"  rebuilt  step 4/4 COPY --chmod=755 hello.sh /usr/local/bin/hello: parent changed (step 3 was rebuilt)\n",
		"The first rebuilt step is step 3/4 COPY greeting.txt . (Dockerfile line 6).",
	} {
		if !strings.Contains(explain, want) {
			t.Errorf("explain after an edit lacks %q:\n%s", want, explain)
		}
	}
	var steps []struct {
		Index  int
		Cached bool
		Why    string
		Reason struct{ Kind string }
	}
	if err := json.Unmarshal([]byte(e.MustRunIn(ctx, "explain", "--json", ".")), &steps); err != nil || len(steps) != 3 || steps[1].Reason.Kind != "input" {
		t.Errorf("explain --json = %+v, %v", steps, err)
	}

	r := build("--expect-cached")
	if r.ExitCode != 3 || !strings.Contains(r.Stderr, "step 3/4 COPY greeting.txt .: input changed: greeting.txt (content)") ||
		!strings.Contains(r.Stderr, "2 of 3 steps were not cached") {
		t.Errorf("--expect-cached after an edit: want exit 3 naming step 3 and the file: %v", r)
	}
	if out := e.MustRun("run", "hello"); out != "Hello again!\n" {
		t.Errorf("run hello = %q, want the edited greeting", out)
	}
	e.Fsck()
}

func TestRun(t *testing.T) {
	t.Parallel()
	e := newBuildEnv(t, busyboxArchive(t))
	_, r := buildExample(t, e, "hello", exampleEpoch())
	if r.ExitCode != 0 {
		t.Fatalf("build: %v", r)
	}
	if out := e.MustRun("run", "example"); out != "Hello from an image minibuild built!\n" {
		t.Errorf("run example = %q, want the greeting", out)
	}
	if r := e.Run("run", "example", "sh", "-c", "echo out; echo err >&2; exit 7"); r.ExitCode != 7 || r.Stdout != "out\n" || r.Stderr != "err\n" {
		t.Errorf("run with exit 7: %v", r)
	}
	if out := e.MustRun("run", "-e", "GREETING=hi", "--user", "nobody", "--workdir", "/tmp", "example", "sh", "-c", "echo $GREETING $(id -u) $(pwd)"); out != "hi 65534 /tmp\n" {
		t.Errorf("run with -e, --user, --workdir = %q", out)
	}
	if out := e.MustRun("run", "--entrypoint", "/bin/echo", "example", "a", "b"); out != "a b\n" {
		t.Errorf("run --entrypoint = %q", out)
	}
	if r := e.Run("run", "nothere"); r.ExitCode != 1 || !strings.Contains(r.Stderr, "nothere") {
		t.Errorf("run nothere: %v", r)
	}
}

// TestBuildOutputs: rawjson progress, --metadata-file, --iidfile and the
// archive outputs agree with the store.
func TestBuildOutputs(t *testing.T) {
	t.Parallel()
	e := newBuildEnv(t, busyboxArchive(t))
	ctx := e.Path("ctx")
	copyExample(t, "multistage", ctx, exampleEpoch())
	r := e.RunIn(ctx, "build", "--progress=rawjson", "-t", "ms", "--iidfile", e.Path("iid"), "--metadata-file", e.Path("md.json"),
		"-o", "type=docker,dest="+e.Path("docker.tar"), ".")
	if r.ExitCode != 0 {
		t.Fatalf("build: %v", r)
	}
	var last map[string]any
	kinds := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(r.Stderr), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("rawjson line %q: %v", line, err)
		}
		kinds[ev["kind"].(string)]++
		last = ev
	}
	in := e.inspect("ms")
	if kinds["start"] == 0 || kinds["done"] == 0 || kinds["start"] != kinds["done"]+kinds["cached"] || last["kind"] != "result" || last["digest"] != in.Digest {
		t.Errorf("rawjson events %v, last %v; want every start ended and a result with %s", kinds, last, in.Digest)
	}
	var md struct {
		Digest string `json:"containerimage.digest"`
		Config string `json:"containerimage.config.digest"`
		Name   string `json:"image.name"`
		Steps  []struct {
			Name   string
			Cached bool
			Key    string
			Reason string
		} `json:"minibuild.steps"`
	}
	if err := json.Unmarshal(readFile(t, e.Path("md.json")), &md); err != nil {
		t.Fatal(err)
	}
	iid := string(readFile(t, e.Path("iid")))
	if md.Digest != in.Digest || md.Config != iid || !strings.HasPrefix(iid, "sha256:") || md.Name != "docker.io/library/ms:latest" || len(md.Steps) == 0 {
		t.Errorf("metadata %+v, iidfile %q; want digest %s", md, iid, in.Digest)
	}
	for _, s := range md.Steps {
		if s.Name == "" || (!s.Cached && s.Reason == "") {
			t.Errorf("metadata step %+v lacks a name or a reason", s)
		}
	}
	if names := tarNames(t, readFile(t, e.Path("docker.tar"))); !names["manifest.json"] {
		t.Errorf("type=docker archive holds %v, want a manifest.json", names)
	}
	out := e.RunIn(ctx, "build", "--progress=quiet", "-o", "type=oci,dest=-", ".")
	if names := tarNames(t, []byte(out.Stdout)); out.ExitCode != 0 || !names["index.json"] || !names["oci-layout"] {
		t.Errorf("type=oci,dest=- wrote %v to stdout: exit %d\n%s", names, out.ExitCode, out.Stderr)
	}
}

func tarNames(t *testing.T, b []byte) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Errorf("read archive: %v", err)
			return names
		}
		names[h.Name] = true
	}
}

// TestBuildInterrupt: SIGINT during a RUN ends the build with exit 130
// and "interrupted", and leaves a store that fsck finds clean.
func TestBuildInterrupt(t *testing.T) {
	t.Parallel()
	e := newBuildEnv(t, busyboxArchive(t))
	ctx := e.Path("ctx")
	writeContext(t, ctx, map[string]string{"Dockerfile": "FROM busybox\nRUN echo started && sleep 600\n"})
	cmd := e.Command(t.Context(), "build", "--progress=rawjson", ctx)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var rest strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		rest.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), `"data":"started\n"`) {
			cmd.Process.Signal(syscall.SIGINT)
			break
		}
	}
	io.Copy(&rest, stderr)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 || !strings.Contains(rest.String(), "interrupted") {
		t.Errorf("interrupted build: exit %d, want 130 and \"interrupted\":\n%s", code, rest.String())
	}
	e.Fsck()
}

// TestPrune: after the image is removed, prune --all deletes its cache
// and blobs, keeps the tagged base, and a second prune finds nothing.
func TestPrune(t *testing.T) {
	t.Parallel()
	e := newBuildEnv(t, busyboxArchive(t))
	if _, r := buildExample(t, e, "hello", exampleEpoch()); r.ExitCode != 0 {
		t.Fatalf("build: %v", r)
	}
	e.MustRun("rmi", "example")
	if out := e.MustRun("prune", "--all"); !strings.Contains(out, "Deleted 3 cache records") {
		t.Errorf("prune --all = %q, want the 3 records of hello's steps deleted", out)
	}
	if out := e.MustRun("prune"); out != "Nothing to remove.\n" {
		t.Errorf("second prune = %q", out)
	}
	if out := e.MustRun("run", "busybox", "echo", "still here"); out != "still here\n" {
		t.Errorf("run busybox after prune = %q", out)
	}
	if r := e.Run("prune", "--keep-storage", "lots"); r.ExitCode != 2 {
		t.Errorf("prune --keep-storage lots: want a usage error: %v", r)
	}
	e.Fsck()
}
