package integration

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// soundDockerfile is the Dockerfile most soundness cases start from. Its
// filesystem steps are WORKDIR (2/5), COPY a.txt (3/5), RUN (4/5) and
// COPY src/ (5/5).
const soundDockerfile = `FROM busybox
WORKDIR /app
COPY a.txt ./
RUN cat /app/*.txt > /out
COPY src/ ./src/
`

// soundFiles is the context most cases start from, besides the
// Dockerfile; src/link is a symlink to one.txt.
var soundFiles = map[string]string{
	"a.txt":       "alpha\n",
	"src/one.txt": "one\n",
	"src/two.txt": "two\n",
	"notes.md":    "not copied by any step\n",
}

// soundCase is one mutation between two builds of the same Dockerfile
// and context. The second build's steps must hit or miss the cache as
// want says, and the explanation of the missed steps must start with
// reasons — both in `minibuild explain` before the build and in the
// build's own metadata.
type soundCase struct {
	name       string
	dockerfile string            // "" for soundDockerfile
	files      map[string]string // context files; nil for soundFiles
	args       []string          // build flags of both builds
	args2      []string          // more flags for the second build only
	change     func(t *testing.T, s *soundEnv)
	// want has one letter per filesystem step of the target, in stage
	// and step order: H (cache hit) or M (miss).
	want string
	// reasons are the reasons of the first missed steps, in order. In
	// them "{old}" and "{new}" stand for the short digests of the base
	// image "busybox" before and after change.
	reasons []string
}

// soundEnv is a case's store and context.
type soundEnv struct {
	*Env
	ctx string
}

// write replaces (or creates) a context file, keeping its mtime old.
func (s *soundEnv) write(t *testing.T, name, body string) {
	t.Helper()
	p := filepath.Join(s.ctx, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, []byte(body))
	if err := os.Chtimes(p, exampleEpoch(), exampleEpoch()); err != nil {
		t.Fatal(err)
	}
}

// editDockerfile replaces old (which must occur) by new in the Dockerfile.
func (s *soundEnv) editDockerfile(t *testing.T, old, new string) {
	t.Helper()
	p := filepath.Join(s.ctx, "Dockerfile")
	b := string(readFile(t, p))
	if !strings.Contains(b, old) {
		t.Fatalf("Dockerfile has no %q:\n%s", old, b)
	}
	writeFile(t, p, []byte(strings.Replace(b, old, new, 1)))
}

func (s *soundEnv) path(name string) string { return filepath.Join(s.ctx, name) }

// edit returns a change that replaces old by new in the Dockerfile.
func edit(old, new string) func(*testing.T, *soundEnv) {
	return func(t *testing.T, s *soundEnv) { s.editDockerfile(t, old, new) }
}

// writes returns a change that writes one context file.
func writes(name, body string) func(*testing.T, *soundEnv) {
	return func(t *testing.T, s *soundEnv) { s.write(t, name, body) }
}

func noChange(*testing.T, *soundEnv) {}

const multiStageDockerfile = `FROM busybox AS build
RUN echo one > /x
COPY a.txt /a.txt

FROM busybox
COPY src/ /src/
COPY --from=build /x /x
RUN cat /x /src/one.txt > /out
`

// soundCases are one-thing mutations, each with the steps it must
// invalidate and the words explain must use.
func soundCases() []soundCase {
	host, other := "linux/"+runtime.GOARCH, "linux/arm64"
	if runtime.GOARCH == "arm64" {
		other = "linux/amd64"
	}
	return []soundCase{
		// Instruction fields.
		{name: "RUN command text", change: edit("RUN cat /app/*.txt > /out", "RUN cat /app/*.txt /app/*.txt > /out"), want: "HHMM",
			reasons: []string{"instruction changed: RUN cat /app/*.txt /app/*.txt > /out (was RUN cat /app/*.txt > /out)", "parent changed (step 4 was rebuilt)"}},
		{name: "COPY source", files: with(soundFiles, "b.txt", "alpha\n"), change: edit("COPY a.txt ./", "COPY b.txt ./"), want: "HMMM",
			reasons: []string{"instruction changed: COPY b.txt ./ (was COPY a.txt ./) [also changed: input]", "parent changed (step 3 was rebuilt)"}},
		{name: "COPY destination", change: edit("COPY a.txt ./", "COPY a.txt ./a2.txt"), want: "HMMM",
			reasons: []string{"instruction changed: COPY a.txt ./a2.txt (was COPY a.txt ./)"}},
		{name: "ADD instead of COPY", change: edit("COPY a.txt ./", "ADD a.txt ./"), want: "HMMM",
			reasons: []string{"instruction changed: ADD a.txt ./ (was COPY a.txt ./)"}},
		{name: "exec form instead of shell form", change: edit("RUN cat /app/*.txt > /out", `RUN ["sh", "-c", "cat /app/*.txt > /out"]`), want: "HHMM",
			reasons: []string{`instruction changed: RUN ["sh","-c","cat /app/*.txt > /out"] (was RUN cat /app/*.txt > /out) [also changed: env]`}},
		{name: "RUN heredoc body", dockerfile: "FROM busybox\nWORKDIR /app\nRUN <<EOF\necho one > /h\nEOF\nCOPY a.txt ./\n",
			change: edit("echo one > /h", "echo two > /h"), want: "HMM",
			reasons: []string{`instruction changed in heredoc EOF, line 1: "echo two > /h" (was "echo one > /h")`}},
		{name: "COPY heredoc body", dockerfile: "FROM busybox\nCOPY <<EOF /h.txt\none\nEOF\nRUN cat /h.txt > /out\n",
			change: edit("one\nEOF", "two\nEOF"), want: "MM",
			reasons: []string{`instruction changed in heredoc EOF, line 1: "two" (was "one")`}},

		// Flags.
		{name: "COPY --chown", change: edit("COPY a.txt ./", "COPY --chown=1:1 a.txt ./"), want: "HMMM",
			reasons: []string{"instruction changed: COPY --chown=1:1 a.txt ./ (was COPY a.txt ./)"}},
		{name: "COPY --chmod", change: edit("COPY a.txt ./", "COPY --chmod=600 a.txt ./"), want: "HMMM",
			reasons: []string{"instruction changed: COPY --chmod=600 a.txt ./ (was COPY a.txt ./)"}},
		{name: "COPY --link", change: edit("COPY a.txt ./", "COPY --link a.txt ./"), want: "HMMM",
			reasons: []string{"instruction changed: COPY --link=true a.txt ./ (was COPY a.txt ./)", "parent changed (step 3 was rebuilt)"}},
		{name: "COPY --from another stage", dockerfile: "FROM busybox AS one\nRUN echo same > /x\nFROM busybox AS two\nRUN echo same > /x\nFROM busybox\nCOPY --from=one /x /x\n",
			change: edit("--from=one", "--from=two"), want: "HM", // stage two's RUN has stage one's key
			reasons: []string{"instruction changed: COPY --from=two /x /x (was COPY --from=one /x /x) [also changed: input]"}},
		{name: "RUN --network", change: edit("RUN cat", "RUN --network=none cat"), want: "HHMM",
			reasons: []string{"instruction changed: RUN --network=none cat /app/*.txt > /out (was RUN cat /app/*.txt > /out)"}},
		{name: "build --network=none", args2: []string{"--network=none"}, change: noChange, want: "HHMM",
			reasons: []string{"instruction changed: RUN --network=none cat /app/*.txt > /out (was RUN cat /app/*.txt > /out)"}},
		{name: "RUN --network=host is the default", change: edit("RUN cat", "RUN --network=host cat"), want: "HHHH"},

		// ARG values, used and unused.
		{name: "build-arg of an undeclared ARG", args2: []string{"--build-arg", "NOTDECLARED=1"}, change: noChange, want: "HHHH"},
		{name: "proxy build-arg", args2: []string{"--build-arg", "HTTP_PROXY=http://proxy.example:3128"}, change: noChange, want: "HHHH"},
		{name: "ARG in scope of a RUN", dockerfile: "FROM busybox\nARG V=1\nCOPY a.txt /\nRUN cat /a.txt > /out\n",
			args2: []string{"--build-arg", "V=2"}, change: noChange, want: "HM", reasons: []string{"ARG V changed 1 → 2"}},
		{name: "ARG declared after the RUN", dockerfile: "FROM busybox\nRUN echo hi > /out\nARG V=1\nRUN echo again >> /out\n",
			args2: []string{"--build-arg", "V=2"}, change: noChange, want: "HM", reasons: []string{"ARG V changed 1 → 2"}},
		{name: "ARG changed but only a COPY follows", dockerfile: "FROM busybox\nRUN echo hi > /out\nARG V=1\nCOPY a.txt /\n",
			args2: []string{"--build-arg", "V=2"}, change: noChange, want: "HH"},
		{name: "ARG used in a COPY source", dockerfile: "FROM busybox\nARG V=1\nCOPY $V.txt /v.txt\n", files: map[string]string{"1.txt": "same\n", "2.txt": "same\n"},
			args2: []string{"--build-arg", "V=2"}, change: noChange, want: "M", reasons: []string{"instruction changed: COPY 2.txt /v.txt (was COPY 1.txt /v.txt) [also changed: input]"}},
		{name: "build-arg equal to the default", dockerfile: "FROM busybox\nARG V=1\nRUN echo $V > /out\n",
			args2: []string{"--build-arg", "V=1"}, change: noChange, want: "H"},

		// The state a step observes.
		{name: "ENV before a RUN", dockerfile: "FROM busybox\nCOPY a.txt /\nENV X=1\nRUN cat /a.txt > /out\n",
			change: edit("X=1", "X=2"), want: "HM", reasons: []string{"ENV X changed 1 → 2"}},
		{name: "ENV before a COPY only", dockerfile: "FROM busybox\nRUN echo hi > /out\nENV X=1\nCOPY a.txt /\n",
			change: edit("X=1", "X=2"), want: "HH"},
		{name: "WORKDIR", change: edit("WORKDIR /app", "WORKDIR /srv"), dockerfile: "FROM busybox\nWORKDIR /app\nCOPY a.txt ./\n", want: "MM",
			reasons: []string{"instruction changed: WORKDIR /srv (was WORKDIR /app)", "parent changed (step 2 was rebuilt) [also changed: env]"}},
		{name: "USER before a COPY and a RUN", dockerfile: "FROM busybox\nCOPY a.txt /a.txt\nUSER nobody\nCOPY src/ /src/\nRUN cat /a.txt > /tmp/out\n",
			change: edit("USER nobody", "USER daemon"), want: "HHM", reasons: []string{"USER changed nobody → daemon"}},
		{name: "SHELL", dockerfile: "FROM busybox\nSHELL [\"/bin/sh\", \"-c\"]\nRUN echo hi > /out\n",
			change: edit(`"-c"`, `"-ec"`), want: "M", reasons: []string{`SHELL changed ["/bin/sh","-c"] → ["/bin/sh","-ec"]`}},
		{name: "LABEL, EXPOSE and CMD", dockerfile: "FROM busybox\nWORKDIR /app\nLABEL v=1\nEXPOSE 80\nCMD [\"a\"]\nCOPY a.txt ./\nRUN cat a.txt > /out\n",
			change: func(t *testing.T, s *soundEnv) {
				s.editDockerfile(t, "v=1", "v=2")
				s.editDockerfile(t, "EXPOSE 80", "EXPOSE 81")
				s.editDockerfile(t, `CMD ["a"]`, `CMD ["b"]`)
			}, want: "HHH"},
		{name: "comment and blank lines", change: edit("COPY a.txt ./\n", "\n# the greeting\nCOPY a.txt ./\n"), want: "HHHH"},
		{name: "a stage the target does not need", dockerfile: "FROM busybox AS unused\nRUN echo 1 > /u\n\nFROM busybox\nCOPY a.txt /\n",
			change: edit("echo 1", "echo 2"), want: "H"},

		// Context files.
		{name: "content with the same size and mtime", change: func(t *testing.T, s *soundEnv) { s.write(t, "a.txt", "ALPHA\n") }, want: "HMMM",
			reasons: []string{"input changed: a.txt (content)", "parent changed (step 3 was rebuilt)", "parent changed (step 4 was rebuilt)"}},
		{name: "mode", change: func(t *testing.T, s *soundEnv) { chmod(t, s.path("a.txt"), 0o755) }, want: "HMMM",
			reasons: []string{"input changed: a.txt (mode)"}},
		{name: "symlink target", change: func(t *testing.T, s *soundEnv) {
			os.Remove(s.path("src/link"))
			symlink(t, "two.txt", s.path("src/link"))
		}, want: "HHHM", reasons: []string{"input changed: src/link (symlink target)"}},
		{name: "added file", change: writes("src/three.txt", "three\n"), want: "HHHM", reasons: []string{"input changed: src/three.txt (added)"}},
		{name: "added empty directory", change: func(t *testing.T, s *soundEnv) { mkdir(t, s.path("src/empty")) }, want: "HHHM",
			reasons: []string{"input changed: src/empty (added)"}},
		{name: "removed file", change: func(t *testing.T, s *soundEnv) { remove(t, s.path("src/two.txt")) }, want: "HHHM",
			reasons: []string{"input changed: src/two.txt (removed)"}},
		{name: "renamed file", change: func(t *testing.T, s *soundEnv) { rename(t, s.path("src/two.txt"), s.path("src/deux.txt")) }, want: "HHHM",
			reasons: []string{"input changed: src/two.txt → src/deux.txt (renamed)"}},
		{name: "file no step copies", change: writes("notes.md", "changed, and longer than before\n"), want: "HHHH"},
		{name: "touch only", change: func(t *testing.T, s *soundEnv) {
			now := time.Now()
			for _, name := range []string{"a.txt", "src/one.txt", "src/two.txt", "src", "."} {
				if err := os.Chtimes(s.path(name), now, now); err != nil {
					t.Fatal(err)
				}
			}
		}, want: "HHHH"},
		{name: ".dockerignore change that selects nothing new", files: with(soundFiles, ".dockerignore", "*.log\n", "src/build.log", "log\n"),
			change: writes(".dockerignore", "*.log\n*.tmp\n"), want: "HHHH"},
		{name: ".dockerignore change that excludes a copied file", change: writes(".dockerignore", "src/two.txt\n"), want: "HHHM",
			reasons: []string{"input changed: src/two.txt (removed)"}},
		{name: "xattr", change: func(t *testing.T, s *soundEnv) {
			if err := syscall.Setxattr(s.path("a.txt"), "user.note", []byte("x"), 0); err != nil {
				t.Skipf("setxattr user.note: %v", err)
			}
		}, want: "HMMM", reasons: []string{"input changed: a.txt (xattrs)"}},

		// Bases, stages, platforms.
		{name: "base image digest", change: func(t *testing.T, s *soundEnv) {
			s.write(t, "base/Dockerfile", "FROM busybox\nRUN echo newer > /etc/release\n")
			s.MustRun("build", "--progress=quiet", "-t", "busybox", s.path("base"))
		}, want: "MMMM", reasons: []string{"base image docker.io/library/busybox:latest now {new} (was {old})", "parent changed (step 2 was rebuilt)"}},
		{name: "base image named by digest", change: func(t *testing.T, s *soundEnv) {
			s.editDockerfile(t, "FROM busybox", "FROM busybox@"+s.inspect("busybox").Digest)
		}, want: "HHHH"},
		{name: "--from stage content", dockerfile: multiStageDockerfile, change: edit("echo one", "echo two"), want: "MMHMM",
			reasons: []string{
				"instruction changed: RUN echo two > /x (was RUN echo one > /x)",
				"parent changed (step 2 was rebuilt)",
				"input changed: stage build (step 3 was rebuilt)",
				"parent changed (step 3 was rebuilt)",
			}},
		{name: "--from stage file not copied", dockerfile: multiStageDockerfile, change: writes("a.txt", "ALPHA\n"), want: "HMHMM",
			reasons: []string{"input changed: a.txt (content)", "input changed: stage build (step 3 was rebuilt)"}},
		{name: "platform", dockerfile: "FROM scratch\nCOPY a.txt /\n", args: []string{"--platform", host},
			args2: []string{"--platform", other}, change: noChange, want: "M", reasons: []string{"platform changed " + host + " → " + other}},
		{name: "platform spelled as the default", dockerfile: "FROM scratch\nCOPY a.txt /\n", args2: []string{"--platform", host}, change: noChange, want: "H"},
		{name: "--no-cache", args2: []string{"--no-cache"}, change: noChange, want: "MMMM", reasons: []string{"rebuilt on request (--no-cache)"}},
	}
}

// with is files plus name/body pairs.
func with(files map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range files {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// TestCacheSoundness builds a Dockerfile, changes one thing, and checks
// which steps the cache satisfies in a second build, and why the others
// ran — both as `minibuild explain` predicts and as the build reports.
func TestCacheSoundness(t *testing.T) {
	t.Parallel()
	archive := busyboxArchive(t)
	cases := soundCases()
	if len(cases) < 30 {
		t.Fatalf("%d soundness cases, want at least 30", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &soundEnv{Env: newBuildEnv(t, archive)}
			s.ctx = s.Path("ctx")
			dockerfile := tc.dockerfile
			if dockerfile == "" {
				dockerfile = soundDockerfile
			}
			files := tc.files
			if files == nil {
				files = soundFiles
			}
			writeContext(t, s.ctx, with(files, "Dockerfile", dockerfile))
			if tc.files == nil {
				symlink(t, "one.txt", s.path("src/link"))
			}
			setTimes(t, s.ctx, exampleEpoch())
			build := append([]string{"build", "--progress=quiet", "-t", "sound"}, tc.args...)
			s.MustRunIn(s.ctx, append(build, ".")...)
			old := s.inspect("busybox").Digest

			tc.change(t, s)
			args := append(tc.args, tc.args2...)
			predicted := s.explainJSON(t, args)
			md := s.Path("md.json")
			s.MustRunIn(s.ctx, append(append([]string{"build", "--progress=quiet", "-t", "sound", "--metadata-file", md}, args...), ".")...)
			built := readMetadataSteps(t, md)

			repl := strings.NewReplacer("{old}", shortHash(old), "{new}", shortHash(s.inspect("busybox").Digest))
			checkSteps(t, "explain", predicted, tc.want, tc.reasons, repl)
			checkSteps(t, "build", built, tc.want, tc.reasons, repl)
			for i := range min(len(predicted), len(built)) {
				if p, b := predicted[i], built[i]; p.Key != b.Key {
					t.Errorf("explain predicted key %s for %s, the build used %s", p.Key, b.Name, b.Key)
				}
			}
		})
	}
}

// stepOutcome is one filesystem step as explain or a build reports it.
type stepOutcome struct {
	Name   string
	Line   int
	Key    string
	Cached bool
	Why    string
}

func (o stepOutcome) String() string {
	if o.Cached {
		return o.Name + ": cached"
	}
	return o.Name + ": " + o.Why
}

// byLine orders steps as the Dockerfile does: a build reports them as
// they finish.
func byLine(steps []stepOutcome) []stepOutcome {
	slices.SortStableFunc(steps, func(a, b stepOutcome) int { return cmp.Compare(a.Line, b.Line) })
	return steps
}

// explainJSON runs `minibuild explain --json` with build flags args in
// the context.
func (s *soundEnv) explainJSON(t *testing.T, args []string) []stepOutcome {
	t.Helper()
	var steps []struct {
		Stage  string
		Index  int
		Total  int
		Line   int
		Text   string
		Cached bool
		Key    string
		Why    string
	}
	out := s.MustRunIn(s.ctx, append(append([]string{"explain", "--json"}, args...), ".")...)
	if err := json.Unmarshal([]byte(out), &steps); err != nil {
		t.Fatalf("explain --json: %v\n%s", err, out)
	}
	var got []stepOutcome
	for _, st := range steps {
		name := fmt.Sprintf("[%s %d/%d] %s", st.Stage, st.Index, st.Total, st.Text)
		got = append(got, stepOutcome{Name: name, Line: st.Line, Key: st.Key, Cached: st.Cached, Why: st.Why})
	}
	return byLine(got)
}

// readMetadataSteps reads the filesystem steps of a --metadata-file.
func readMetadataSteps(t *testing.T, path string) []stepOutcome {
	t.Helper()
	var md struct {
		Steps []struct {
			Name   string
			Line   int
			Cached bool
			Key    string
			Reason string
		} `json:"minibuild.steps"`
	}
	if err := json.Unmarshal(readFile(t, path), &md); err != nil {
		t.Fatalf("metadata file: %v", err)
	}
	var got []stepOutcome
	for _, st := range md.Steps {
		if st.Key == "" {
			continue // FROM an image, or a config-only instruction
		}
		got = append(got, stepOutcome{Name: st.Name, Line: st.Line, Key: st.Key, Cached: st.Cached, Why: st.Reason})
	}
	return byLine(got)
}

// checkSteps compares steps with want (H/M per step) and the reasons of
// the first missed steps.
func checkSteps(t *testing.T, source string, steps []stepOutcome, want string, reasons []string, repl *strings.Replacer) {
	t.Helper()
	var got strings.Builder
	var whys []string
	for _, s := range steps {
		if s.Cached {
			got.WriteByte('H')
		} else {
			got.WriteByte('M')
			whys = append(whys, s.Why)
		}
	}
	if got.String() != want {
		t.Errorf("%s: steps %s, want %s:\n%s", source, got.String(), want, outcomes(steps))
		return
	}
	for i, r := range reasons {
		if r = repl.Replace(r); i >= len(whys) || whys[i] != r {
			t.Errorf("%s: reason of missed step %d = %q, want %q:\n%s", source, i+1, at(whys, i), r, outcomes(steps))
		}
	}
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return "(none)"
}

func outcomes(steps []stepOutcome) string {
	var b strings.Builder
	for _, s := range steps {
		fmt.Fprintf(&b, "  %v\n", s)
	}
	return b.String()
}

// shortHash is "sha256:" and 12 hex digits, as explain shows digests.
func shortHash(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}

// setTimes sets the mtime of every path under dir (dir included; not
// following symlinks) to mtime, children before parents.
func setTimes(t *testing.T, dir string, mtime time.Time) {
	t.Helper()
	var paths []string
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		paths = append(paths, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := len(paths) - 1; i >= 0; i-- {
		if err := lutimes(paths[i], mtime); err != nil {
			t.Fatal(err)
		}
	}
}

func chmod(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, p string) {
	t.Helper()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
}

func rename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}
