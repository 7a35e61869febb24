package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"minibuild/internal/testenv"
)

const mib = 1 << 20

// buildStdin builds the Dockerfile text df in dir, tagged tag.
func buildStdin(t *testing.T, e *Env, dir, tag, df string) {
	t.Helper()
	cmd := e.Command(t.Context(), "--progress=plain", "-t", tag, "-f", "-", ".")
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(df)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", tag, err, out)
	}
}

// seedEnv is a store with bench/corpus/01-seed-layers built as "seed".
func seedEnv(t *testing.T) (e *Env, corpus string) {
	t.Helper()
	e = newBuildEnv(t, busyboxArchive(t))
	corpus = repoPath(t, "bench", "corpus", "01-seed-layers")
	e.MustRunIn(corpus, "--progress=plain", "-t", "seed", ".")
	return e, corpus
}

// TestBloatCorpus01 checks the acceptance numbers of corpus 01 through the
// binary: 5 MiB written, 1 MiB left, 4 MiB wasted, charged 1 MiB and 2 MiB
// to the two chmod -R steps and 1 MiB to the rm, with hints.
func TestBloatCorpus01(t *testing.T) {
	t.Parallel()
	e, _ := seedEnv(t)
	var r struct {
		TotalBytes   int64 `json:"total_bytes"`
		VisibleBytes int64 `json:"visible_bytes"`
		WastedBytes  int64 `json:"wasted_bytes"`
		Layers       []struct {
			Layer       int    `json:"layer"`
			Instruction string `json:"instruction"`
			Base        bool   `json:"base"`
			Bytes       int64  `json:"bytes"`
			Wasted      int64  `json:"wasted"`
			Hint        string `json:"hint"`
		} `json:"layers"`
	}
	out := e.MustRun("bloat", "--json", "seed")
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bloat --json: %v\n%s", err, out)
	}
	if r.WastedBytes != 4*mib || r.TotalBytes-r.VisibleBytes != 4*mib {
		t.Errorf("bloat: wasted %d, total %d, visible %d; want 4 MiB wasted", r.WastedBytes, r.TotalBytes, r.VisibleBytes)
	}
	var base, written int64
	charged := map[string]int64{}
	for _, l := range r.Layers {
		if l.Base {
			base += l.Bytes
			continue
		}
		written += l.Bytes
		if l.Wasted > 0 {
			charged[strconv.Itoa(l.Layer)+" "+l.Instruction] = l.Wasted
			if l.Hint == "" {
				t.Errorf("layer %d (%s) wastes %d bytes and has no hint", l.Layer, l.Instruction, l.Wasted)
			}
		}
	}
	if written != 5*mib || r.VisibleBytes-base != mib {
		t.Errorf("bloat: the steps wrote %d bytes and left %d, want 5 MiB and 1 MiB", written, r.VisibleBytes-base)
	}
	want := map[string]int64{
		"4 RUN chmod -R 0777 /data": mib,
		"6 RUN chmod -R 0777 /data": 2 * mib,
		"7 RUN rm /data/one":        mib,
	}
	if len(charged) != len(want) {
		t.Errorf("bloat charges %v, want %v", charged, want)
	}
	for k, v := range want {
		if charged[k] != v {
			t.Errorf("bloat charges layer %q with %d bytes, want %d", k, charged[k], v)
		}
	}

	plain := e.MustRun("bloat", "seed")
	for _, s := range []string{"COPY --chmod/--chown", "delete them in the same RUN", "multi-stage", "/data/one"} {
		if !strings.Contains(plain, s) {
			t.Errorf("bloat output lacks %q:\n%s", s, plain)
		}
	}
	// The CI gate.
	if r := e.Run("bloat", "--max-wasted", "4MiB", "seed"); r.ExitCode != 0 {
		t.Errorf("bloat --max-wasted 4MiB: %v", r)
	}
	if r := e.Run("bloat", "--max-wasted", "4MB", "seed"); r.ExitCode != 4 || !strings.Contains(r.Stderr, "exceeds --max-wasted") {
		t.Errorf("bloat --max-wasted 4MB: %v, want exit 4", r)
	}
	if r := e.Run("bloat", "--min-efficiency", "99%", "seed"); r.ExitCode != 4 {
		t.Errorf("bloat --min-efficiency 99%%: %v, want exit 4", r)
	}
	if r := e.Run("bloat", "--max-wasted", "lots", "seed"); r.ExitCode != 2 {
		t.Errorf("bloat --max-wasted lots: %v, want a usage error", r)
	}
}

// TestRebaseBinary rebases corpus 01 onto a patched base and checks the
// result is the image a rebuild makes, that other tools read it, and that
// --strict refuses a conflict without writing.
func TestRebaseBinary(t *testing.T) {
	t.Parallel()
	e, corpus := seedEnv(t)
	buildStdin(t, e, corpus, "busybox:patched", "FROM busybox\nRUN echo patched > /etc/motd\n")
	e.MustRun("rebase", "seed", "--onto", "busybox:patched", "-t", "seed:rebased")
	df := strings.Replace(string(readFile(t, filepath.Join(corpus, "Dockerfile"))), "\nFROM busybox\n", "\nFROM busybox:patched\n", 1)
	buildStdin(t, e, corpus, "seed:rebuilt", df)
	names := indexNames(t, filepath.Join(e.Root, "oci"))
	rebased, rebuilt := names["docker.io/library/seed:rebased"], names["docker.io/library/seed:rebuilt"]
	if rebased == "" || rebased != rebuilt {
		t.Errorf("rebased image %q, rebuilt image %q: want the same digest", rebased, rebuilt)
	}
	if out := e.MustRun("diff", "seed:rebased", "seed:rebuilt"); out != "" {
		t.Errorf("diff seed:rebased seed:rebuilt = %q, want nothing", out)
	}
	if out := e.MustRun("diff", "seed", "seed:rebased"); strings.TrimSpace(out) != "A /etc/motd  8B" {
		t.Errorf("diff seed seed:rebased = %q, want the new base's /etc/motd only", out)
	}

	skopeo := testenv.RequireTool(t, "skopeo")
	var inspected struct {
		Digest string
		Layers []string
	}
	raw := run(t, skopeo, "inspect", "oci:"+filepath.Join(e.Root, "oci")+":docker.io/library/seed:rebased")
	if err := json.Unmarshal(raw, &inspected); err != nil || inspected.Digest != rebased || len(inspected.Layers) != 8 {
		t.Errorf("skopeo inspect of the rebased image = %s (%v), want digest %s and 8 layers", raw, err, rebased)
	}
	if r := e.Run("run", "seed:rebased", "cat", "/etc/motd"); r.ExitCode != 0 || r.Stdout != "patched\n" {
		t.Errorf("run seed:rebased cat /etc/motd: %v", r)
	}
	if r := e.Run("run", "seed:rebased"); r.ExitCode != 0 || !strings.Contains(r.Stdout, "two") || strings.Contains(r.Stdout, "one") {
		t.Errorf("run seed:rebased (its CMD, ls -alh /data): %v", r)
	}
	e.Fsck()

	// A conflict: the app and the new base both change /etc/passwd.
	buildStdin(t, e, corpus, "app", "FROM busybox\nRUN echo app:x:1000:1000::/home/app:/bin/sh >> /etc/passwd\n")
	buildStdin(t, e, corpus, "busybox:news", "FROM busybox\nRUN echo news:x:9:13::/:/sbin/nologin >> /etc/passwd\n")
	before := layoutState(t, e.Root)
	r := e.Run("rebase", "app", "--onto", "busybox:news", "--strict")
	if r.ExitCode != 1 || !strings.Contains(r.Stdout, "/etc/passwd  layer 2 writes it") || !strings.Contains(r.Stderr, "--strict: nothing written") {
		t.Errorf("rebase --strict with a conflict: %v", r)
	}
	if dry := e.MustRun("rebase", "app", "--onto", "busybox:news", "--dry-run"); !strings.Contains(dry, "Conflicts (1)") {
		t.Errorf("rebase --dry-run = %s, want the conflict listed", dry)
	}
	if after := layoutState(t, e.Root); len(after) != len(before) || after["index.json"] != before["index.json"] {
		t.Errorf("rebase --strict and --dry-run changed the store")
	}
	// Without --strict it is written, conflict and all: the image's
	// /etc/passwd wins.
	e.MustRun("rebase", "app", "--onto", "busybox:news", "-t", "app:news")
	if r := e.Run("run", "app:news", "cat", "/etc/passwd"); r.ExitCode != 0 || !strings.Contains(r.Stdout, "app:x:1000") || strings.Contains(r.Stdout, "news:") {
		t.Errorf("run app:news cat /etc/passwd: %v", r)
	}
	if r := e.Run("rebase", "app", "--onto", "busybox:news", "--from", "busybox:news"); r.ExitCode != 1 || !strings.Contains(r.Stderr, "is not the base of app") {
		t.Errorf("rebase --from a base that is not the image's: %v, want a refusal", r)
	}
}

// TestDiffTwoBuilds builds one Dockerfile twice with one file changed in
// between: diff shows exactly that file.
func TestDiffTwoBuilds(t *testing.T) {
	t.Parallel()
	e := newBuildEnv(t, busyboxArchive(t))
	ctx := e.Path("ctx")
	if err := os.MkdirAll(filepath.Join(ctx, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(ctx, "Dockerfile"), []byte("FROM busybox\nCOPY src /app/src\nCOPY app.conf /etc/app.conf\nRUN ls -R /app > /app/index\n"))
	writeFile(t, filepath.Join(ctx, "src", "main.c"), []byte("int main() { return 0; }\n"))
	writeFile(t, filepath.Join(ctx, "src", "util.c"), []byte("int util;\n"))
	writeFile(t, filepath.Join(ctx, "app.conf"), []byte("debug=0\n"))
	e.MustRunIn(ctx, "--progress=plain", "-t", "app:1", ".")
	writeFile(t, filepath.Join(ctx, "src", "util.c"), []byte("int util = 42;\n"))
	e.MustRunIn(ctx, "--progress=plain", "-t", "app:2", ".")

	if out, want := e.MustRun("diff", "app:1", "app:2"), "C /app/src/util.c  15B  content (was 10B)\n"; out != want {
		t.Errorf("diff app:1 app:2 = %q, want %q", out, want)
	}
	var d struct {
		Changes []struct {
			Kind, Path    string
			Fields        []string
			Before, After struct{ Digest string }
		}
	}
	if err := json.Unmarshal([]byte(e.MustRun("diff", "--json", "app:1", "app:2")), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Changes) != 1 || d.Changes[0].Path != "/app/src/util.c" || d.Changes[0].Before.Digest == d.Changes[0].After.Digest {
		t.Errorf("diff --json app:1 app:2 = %+v, want one content change of /app/src/util.c", d.Changes)
	}
	// The layer that copied src/ changed that one file too.
	if out := e.MustRun("diff", "app:2", "--layer", "-3"); !strings.Contains(out, "A /app/src/util.c") {
		t.Errorf("diff app:2 --layer -3 = %q, want the first COPY layer", out)
	}
}

// docBlock is one checked or built block of docs/layers.md.
type docBlock struct {
	kind string // "check" or "dockerfile"
	opts string // " exit=N stderr" for a check of a failing command
	arg  string // the command line, or the tag to build
	body string
}

var docBlockRE = regexp.MustCompile("(?s)<!-- (check|dockerfile)([^:]*): (.*?) -->\n```[a-z]*\n(.*?)```")

// TestLayersDoc runs the commands of docs/layers.md in order and compares
// their output with the document, so the tutorial cannot go stale.
func TestLayersDoc(t *testing.T) {
	t.Parallel()
	e, corpus := seedEnv(t)
	doc := string(readFile(t, repoPath(t, "docs", "layers.md")))
	blocks := docBlockRE.FindAllStringSubmatch(doc, -1)
	if len(blocks) < 10 {
		t.Fatalf("docs/layers.md has %d checked blocks; the markers changed?", len(blocks))
	}
	for _, m := range blocks {
		b := docBlock{kind: m[1], opts: m[2], arg: m[3], body: m[4]}
		if b.kind == "dockerfile" {
			buildStdin(t, e, corpus, b.arg, b.body)
			continue
		}
		args := strings.Fields(strings.TrimPrefix(b.arg, "minibuild "))
		r := e.RunIn(corpus, args...)
		got, wantExit := r.Stdout, 0
		if o := strings.TrimSpace(b.opts); o != "" {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(o, "exit="), " stderr"))
			if err != nil {
				t.Fatalf("docs/layers.md: bad marker options %q", o)
			}
			got, wantExit = r.Stderr, n
		}
		if r.ExitCode != wantExit {
			t.Errorf("docs/layers.md: %s: exit %d, want %d\n%v", b.arg, r.ExitCode, wantExit, r)
			continue
		}
		if normalizeDoc(got) != normalizeDoc(b.body) {
			t.Errorf("docs/layers.md: output of %s changed; the document says\n%s\nminibuild prints\n%s", b.arg, b.body, got)
		}
	}
}

var (
	fullDigestRE  = regexp.MustCompile(`sha256:[0-9a-f]{64}`)
	shortIDRE     = regexp.MustCompile(`\b[0-9a-f]{12}\b`)
	sizeRE        = regexp.MustCompile(`\b\d+(\.\d+)?[kMGT]?B\b`)
	percentRE     = regexp.MustCompile(`\d+(\.\d+)?%`)
	barRE         = regexp.MustCompile(`(^|\s)[#.]+(\s|$)`)
	volatileLines = regexp.MustCompile(`\(base\)|COPY rootfs/|^Total:|^Final tree:|^Efficiency:`)
)

// normalizeDoc drops what depends on the host's busybox (its size, so the
// totals and bar lengths) and on digests, and the column padding those
// widths cause.
func normalizeDoc(s string) string {
	var out []string
	for line := range strings.Lines(s) {
		line = fullDigestRE.ReplaceAllString(line, "sha256:<digest>")
		line = shortIDRE.ReplaceAllString(line, "<id>")
		if volatileLines.MatchString(line) {
			line = sizeRE.ReplaceAllString(line, "<size>")
			line = percentRE.ReplaceAllString(line, "<pct>")
		}
		line = barRE.ReplaceAllString(line, " <bar> ")
		out = append(out, strings.Join(strings.Fields(line), " "))
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}
