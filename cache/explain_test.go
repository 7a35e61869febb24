package cache_test

import (
	"encoding/json"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"minibuild/cache"
)

// fakeListings serves listings from memory.
type fakeListings map[v1.Hash][]cache.File

func (f fakeListings) Files(id v1.Hash) ([]cache.File, bool, error) {
	files, ok := f[id]
	return files, ok, nil
}

func goFile(path, content string) cache.File {
	return cache.File{Path: path, Type: cache.TypeFile, Mode: 0o644, Size: int64(len(content)), Digest: sha(content)}
}

// reasonCases builds one (prev, cur) pair per kind of reason.
func reasonCases() (fakeListings, []struct {
	name      string
	prev, cur cache.Parts
	opts      cache.ExplainOptions
	want      string
	kind      cache.ReasonKind
}) {
	oldFiles := []cache.File{goFile("src/main.go", "package main"), goFile("src/old.go", "x"), goFile("go.mod", "module a")}
	newFiles := []cache.File{goFile("src/main.go", "package mian"), goFile("src/new.go", "y"), goFile("go.mod", "module a")}
	listings := fakeListings{cache.Digest(oldFiles): oldFiles, cache.Digest(newFiles): newFiles}
	copyParts := func(files []cache.File) cache.Parts {
		return cache.Parts{
			Parent: cache.StepParent(hash("a1")), Instruction: "COPY src/ /app/src", Platform: "linux/amd64",
			Inputs: []cache.Input{{Kind: cache.InputContext, Digest: cache.Digest(files)}},
		}
	}
	run := func(mut func(*cache.Parts)) cache.Parts {
		p := sampleParts()
		if mut != nil {
			mut(&p)
		}
		return p
	}
	producer := func(state v1.Hash) (cache.StepRef, bool) {
		if state == hash("a2") {
			return cache.StepRef{Index: 3, Total: 9, Text: "RUN make"}, true
		}
		if state == hash("a3") {
			return cache.StepRef{Index: 2, Total: 9, Text: "COPY --link a /a", Cached: true}, true
		}
		return cache.StepRef{}, false
	}
	named := cache.ExplainOptions{Files: listings, Producer: producer}
	cases := []struct {
		name      string
		prev, cur cache.Parts
		opts      cache.ExplainOptions
		want      string
		kind      cache.ReasonKind
	}{
		{"files", copyParts(oldFiles), copyParts(newFiles), named,
			"input changed: src/main.go (content), src/new.go (added), src/old.go (removed)", cache.ReasonInput},
		{"files without listings", copyParts(oldFiles), copyParts(newFiles), cache.ExplainOptions{},
			"input changed: build context files (file listing not kept, cannot name files)", cache.ReasonInput},
		{"files limited", copyParts(oldFiles), copyParts(newFiles), cache.ExplainOptions{Files: listings, MaxFiles: 1},
			"input changed: src/main.go (content) and 2 more", cache.ReasonInput},
		{"arg", run(nil), run(func(p *cache.Parts) { p.Env[1].Value = "1.3" }), named,
			"ARG VERSION changed 1.2 → 1.3", cache.ReasonEnv},
		{"arg added", run(nil), run(func(p *cache.Parts) {
			p.Env = append(p.Env, cache.EnvVar{Kind: cache.EnvARG, Name: "DEBUG", Value: "1"})
		}), named, "ARG DEBUG added: 1", cache.ReasonEnv},
		{"env removed and workdir", run(nil), run(func(p *cache.Parts) { p.Env = p.Env[1:]; p.Env[1].Value = "/app" }), named,
			"ENV PATH removed (was /usr/bin:/bin); WORKDIR changed /src → /app", cache.ReasonEnv},
		{"user and shell", run(nil), run(func(p *cache.Parts) { p.Env[3].Value = "root"; p.Env[4].Value = `["/bin/bash","-c"]` }), named,
			`SHELL changed ["/bin/sh","-c"] → ["/bin/bash","-c"]; USER changed build → root`, cache.ReasonEnv},
		{"empty value", run(nil), run(func(p *cache.Parts) { p.Env[1].Value = "" }), named,
			`ARG VERSION changed 1.2 → ""`, cache.ReasonEnv},
		{"parent rebuilt", run(nil), run(func(p *cache.Parts) { p.Parent = cache.StepParent(hash("a2")) }), named,
			"parent changed (step 3 was rebuilt)", cache.ReasonParent},
		{"parent link on new base", run(nil), run(func(p *cache.Parts) { p.Parent = cache.StepParent(hash("a3")) }), named,
			"parent changed (step 2 is on a new parent)", cache.ReasonParent},
		{"parent unnamed", run(nil), run(func(p *cache.Parts) { p.Parent = cache.StepParent(hash("a4")) }), cache.ExplainOptions{},
			"parent changed to sha256:a4a4a4a4a4a4 (was sha256:a1a1a1a1a1a1)", cache.ReasonParent},
		{"base", run(func(p *cache.Parts) { p.Parent = cache.ImageParent(hash("b1"), "busybox:latest") }),
			run(func(p *cache.Parts) { p.Parent = cache.ImageParent(hash("b2"), "busybox:latest") }), named,
			"base image busybox:latest now sha256:b2b2b2b2b2b2 (was sha256:b1b1b1b1b1b1)", cache.ReasonBase},
		{"base from scratch", run(func(p *cache.Parts) { p.Parent = cache.Scratch }),
			run(func(p *cache.Parts) { p.Parent = cache.ImageParent(hash("b2"), "alpine:3.20") }), named,
			"base changed to alpine:3.20 sha256:b2b2b2b2b2b2 (was scratch)", cache.ReasonBase},
		{"instruction", run(nil), run(func(p *cache.Parts) { p.Instruction = "RUN make all" }), named,
			"instruction changed: RUN make all (was RUN --network=none make VERSION=$VERSION)", cache.ReasonInstruction},
		{"heredoc", run(func(p *cache.Parts) { p.Instruction = "RUN <<EOF\n<<EOF\nset -e\nmake\nEOF" }),
			run(func(p *cache.Parts) { p.Instruction = "RUN <<EOF\n<<EOF\nset -e\nmake test\nEOF" }), named,
			`instruction changed in heredoc EOF, line 2: "make test" (was "make")`, cache.ReasonInstruction},
		{"stage input", run(nil), run(func(p *cache.Parts) { p.Inputs[0].Digest = hash("a2") }), named,
			"input changed: stage deps (step 3 was rebuilt)", cache.ReasonInput},
		{"image input", run(func(p *cache.Parts) {
			p.Inputs = []cache.Input{{Kind: cache.InputImage, Name: "alpine:3", Digest: hash("c1")}}
		}),
			run(func(p *cache.Parts) {
				p.Inputs = []cache.Input{{Kind: cache.InputImage, Name: "alpine:3", Digest: hash("c2")}}
			}), named,
			"input changed: image alpine:3 now sha256:c2c2c2c2c2c2 (was sha256:c1c1c1c1c1c1)", cache.ReasonInput},
		{"url input", run(func(p *cache.Parts) {
			p.Inputs = []cache.Input{{Kind: cache.InputURL, Name: "https://x/y.tgz", Digest: hash("c1")}}
		}),
			run(func(p *cache.Parts) {
				p.Inputs = []cache.Input{{Kind: cache.InputURL, Name: "https://x/y.tgz", Digest: hash("c2")}}
			}), named,
			"input changed: https://x/y.tgz now sha256:c2c2c2c2c2c2 (was sha256:c1c1c1c1c1c1)", cache.ReasonInput},
		{"input added", run(func(p *cache.Parts) { p.Inputs = nil }), run(nil), named,
			"input added: stage deps", cache.ReasonInput},
		{"platform", run(nil), run(func(p *cache.Parts) { p.Platform = "linux/arm64" }), named,
			"platform changed linux/amd64 → linux/arm64", cache.ReasonPlatform},
		{"version", run(func(p *cache.Parts) { p.Version = "minibuild.step.v0" }), run(nil), named,
			"cache key format changed minibuild.step.v0 → minibuild.step.v1", cache.ReasonVersion},
		{"several", run(nil), run(func(p *cache.Parts) { p.Parent = cache.StepParent(hash("a2")); p.Env[1].Value = "2"; p.Inputs = nil }), named,
			"parent changed (step 3 was rebuilt) [also changed: env, input]", cache.ReasonParent},
		{"same parts", run(nil), run(nil), named,
			"same key as the previous build, but its cache record is gone (pruned, or that build did not finish)", cache.ReasonRecordMissing},
	}
	return listings, cases
}

func TestExplainWording(t *testing.T) {
	t.Parallel()
	_, cases := reasonCases()
	for _, c := range cases {
		r := cache.Explain(c.prev, c.cur, c.opts)
		if got := r.String(); got != c.want {
			t.Errorf("%s: Explain().String() = %q, want %q", c.name, got, c.want)
		}
		if r.Kind != c.kind {
			t.Errorf("%s: Kind = %s, want %s", c.name, r.Kind, c.kind)
		}
		// JSON for tools: round-trips, names the kind.
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("%s: marshal: %v", c.name, err)
		}
		var back cache.Reason
		if err := json.Unmarshal(data, &back); err != nil || back.String() != r.String() {
			t.Errorf("%s: JSON round trip = %q, %v", c.name, back.String(), err)
		}
		if !strings.Contains(string(data), `"kind":"`+string(c.kind)+`"`) {
			t.Errorf("%s: JSON %s lacks the kind", c.name, data)
		}
	}
}

func TestExplainStructured(t *testing.T) {
	t.Parallel()
	p := sampleParts()
	q := sampleParts()
	q.Env[1].Value = "1.3"
	r := cache.Explain(p, q, cache.ExplainOptions{})
	want := cache.EnvChange{Kind: cache.EnvARG, Name: "VERSION", Change: cache.Changed, Old: "1.2", New: "1.3"}
	if len(r.Env) != 1 || r.Env[0] != want {
		t.Errorf("Explain().Env = %+v, want [%+v]", r.Env, want)
	}
}

// TestExplainLinkToggled: adding --link keys the layer without a parent;
// the reason is the instruction, not a base of kind none.
func TestExplainLinkToggled(t *testing.T) {
	t.Parallel()
	prev := cache.Parts{Parent: cache.StepParent(hash("a1")), Instruction: "COPY a.txt ./", Platform: "linux/amd64"}
	cur := prev
	cur.Parent, cur.Instruction = cache.Parent{Kind: cache.ParentNone}, "COPY --link=true a.txt ./"
	want := "instruction changed: COPY --link=true a.txt ./ (was COPY a.txt ./)"
	if got := cache.Explain(prev, cur, cache.ExplainOptions{}).String(); got != want {
		t.Errorf("Explain(COPY → COPY --link) = %q, want %q", got, want)
	}
	if got := cache.Explain(cur, prev, cache.ExplainOptions{}).String(); got != "instruction changed: COPY a.txt ./ (was COPY --link=true a.txt ./)" {
		t.Errorf("Explain(COPY --link → COPY) = %q", got)
	}
}

func TestExplainHeredocLineRemoved(t *testing.T) {
	t.Parallel()
	prev := cache.Parts{Instruction: "RUN <<EOF\n<<EOF\nset -e\nmake\nEOF", Platform: "linux/amd64"}
	cur := prev
	cur.Instruction = "RUN <<EOF\n<<EOF\nset -e\nEOF"
	want := `instruction changed in heredoc EOF, line 2: "EOF" (was "make")`
	if got := cache.Explain(prev, cur, cache.ExplainOptions{}).String(); got != want {
		t.Errorf("Explain(heredoc line removed) = %q, want %q", got, want)
	}
}
