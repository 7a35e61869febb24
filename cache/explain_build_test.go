package cache_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"minibuild/cache"
)

// world is the state the walkthrough builds from.
type world struct {
	golang, busybox v1.Hash // base manifest digests
	files           []cache.File
	version         string // --build-arg VERSION
}

func walkthroughWorld() world {
	return world{
		golang:  sha("golang:1.22 manifest"),
		busybox: sha("busybox:latest manifest 1"),
		version: "1.2",
		files: []cache.File{
			goFile("go.mod", "module example.com/app\n"),
			goFile("go.sum", ""),
			goFile("src/main.go", "package main\n"),
			goFile("src/util.go", "package main // util\n"),
		},
	}
}

// play computes the steps of the walkthrough Dockerfile the way the
// builder does, marking each step cached if its key is in records (and
// adding it there, as a successful build does):
//
//	FROM golang:1.22 AS build
//	WORKDIR /src
//	COPY go.mod go.sum ./
//	RUN go mod download
//	COPY . .
//	ARG VERSION=dev
//	RUN go build -ldflags "-X main.version=$VERSION" -o /out/app ./src
//
//	FROM busybox:latest
//	COPY --from=build /out/app /bin/app
func play(w world, records map[v1.Hash]bool, listings fakeListings) cache.Build {
	b := cache.Build{Dockerfile: "/home/me/app/Dockerfile", Context: "/home/me/app"}
	const platform = "linux/amd64"
	goEnv := []string{"PATH=/usr/local/go/bin:/usr/bin:/bin", "GOLANG_VERSION=1.22.5"}
	step := func(stage string, line int, text string, parent cache.Parent, instr string, env []cache.EnvVar, inputs ...cache.Input) cache.Parent {
		p := cache.Parts{Parent: parent, Instruction: instr, Env: env, Inputs: inputs, Platform: platform}
		k := p.Key()
		b.Steps = append(b.Steps, cache.StepLog{
			Index: len(b.Steps) + 1, Stage: stage, Line: line, Text: text, Key: k, Parts: p, Cached: records[k],
		})
		records[k] = true
		return cache.StepParent(k)
	}
	context := func(files []cache.File) cache.Input {
		listings[cache.Digest(files)] = slices.Clone(files) // as PutFiles stores a copy
		return cache.Input{Kind: cache.InputContext, Digest: cache.Digest(files)}
	}
	scope := cache.Scope{Env: goEnv}
	parent := cache.ImageParent(w.golang, "golang:1.22")
	parent = step("build", 2, "WORKDIR /src", parent, "WORKDIR /src", scope.Observed(cache.ObservesWorkdir))
	scope.Workdir = "/src"
	parent = step("build", 3, "COPY go.mod go.sum ./", parent, "COPY go.mod go.sum ./",
		scope.Observed(cache.ObservesCopyRelative), context(cache.Subtrees(w.files, "go.mod", "go.sum")))
	parent = step("build", 4, "RUN go mod download", parent, "RUN go mod download", scope.Observed(cache.ObservesRunShell))
	parent = step("build", 5, "COPY . .", parent, "COPY . .", scope.Observed(cache.ObservesCopyRelative), context(w.files))
	scope.Args = map[string]string{"VERSION": w.version}
	run := `RUN go build -ldflags "-X main.version=$VERSION" -o /out/app ./src`
	built := step("build", 7, run, parent, run, scope.Observed(cache.ObservesRunShell))
	step("1", 10, "COPY --from=build /out/app /bin/app", cache.ImageParent(w.busybox, "busybox:latest"),
		"COPY --from=build /out/app /bin/app", nil, cache.Input{Kind: cache.InputStage, Name: "build", Digest: built.Digest})
	for i := range b.Steps {
		b.Steps[i].Total = len(b.Steps)
	}
	return b
}

func explainLines(prev *cache.Build, cur cache.Build, listings cache.ListingSource) string {
	var lines []string
	for _, r := range cache.ExplainBuild(prev, cur, listings) {
		lines = append(lines, r.String())
	}
	return strings.Join(lines, "\n")
}

// walkthrough runs the scenario of play and returns the explain output
// of each build by name.
func walkthrough() map[string]string {
	records := map[v1.Hash]bool{}
	listings := fakeListings{}
	out := map[string]string{}
	w := walkthroughWorld()
	first := play(w, records, listings)
	out["first-build"] = explainLines(nil, first, listings)

	again := play(w, records, listings)
	out["no-op"] = explainLines(&first, again, listings)

	w.files = []cache.File{w.files[0], w.files[1], goFile("src/main.go", "package main\n\n// edited\n"),
		goFile("src/new.go", "package main\n"), w.files[3]}
	w.version = "1.3"
	edit := play(w, records, listings)
	out["edit"] = explainLines(&again, edit, listings)

	w.busybox = sha("busybox:latest manifest 2")
	rebase := play(w, records, listings)
	out["new-base"] = explainLines(&edit, rebase, listings)

	w.files[0] = goFile("go.mod", "module example.com/app\n\nrequire example.com/lib v1.0.0\n")
	dep := play(w, records, listings)
	out["dependency"] = explainLines(&rebase, dep, listings)
	return out
}

// walkthroughWant is what ExplainBuild says about each build of
// walkthrough (numbered as play numbers steps, across stages; the
// builder numbers them per stage, as docs/cache.md's walkthrough shows).
var walkthroughWant = map[string]string{
	"first-build": `step 1/6 WORKDIR /src: no previous build of this Dockerfile
step 2/6 COPY go.mod go.sum ./: no previous build of this Dockerfile
step 3/6 RUN go mod download: no previous build of this Dockerfile
step 4/6 COPY . .: no previous build of this Dockerfile
step 5/6 RUN go build -ldflags "-X main.version=$VERSION" -o /out/app ./src: no previous build of this Dockerfile
step 6/6 COPY --from=build /out/app /bin/app: no previous build of this Dockerfile`,
	"no-op": `step 1/6 WORKDIR /src: cached
step 2/6 COPY go.mod go.sum ./: cached
step 3/6 RUN go mod download: cached
step 4/6 COPY . .: cached
step 5/6 RUN go build -ldflags "-X main.version=$VERSION" -o /out/app ./src: cached
step 6/6 COPY --from=build /out/app /bin/app: cached`,
	"edit": `step 1/6 WORKDIR /src: cached
step 2/6 COPY go.mod go.sum ./: cached
step 3/6 RUN go mod download: cached
step 4/6 COPY . .: input changed: src/main.go (content), src/new.go (added)
step 5/6 RUN go build -ldflags "-X main.version=$VERSION" -o /out/app ./src: parent changed (step 4 was rebuilt) [also changed: env]
step 6/6 COPY --from=build /out/app /bin/app: input changed: stage build (step 5 was rebuilt)`,
	"new-base": `step 1/6 WORKDIR /src: cached
step 2/6 COPY go.mod go.sum ./: cached
step 3/6 RUN go mod download: cached
step 4/6 COPY . .: cached
step 5/6 RUN go build -ldflags "-X main.version=$VERSION" -o /out/app ./src: cached
step 6/6 COPY --from=build /out/app /bin/app: base image busybox:latest now sha256:721ed63bd08c (was sha256:b74337dd4ec1)`,
	"dependency": `step 1/6 WORKDIR /src: cached
step 2/6 COPY go.mod go.sum ./: input changed: go.mod (content)
step 3/6 RUN go mod download: parent changed (step 2 was rebuilt)
step 4/6 COPY . .: parent changed (step 3 was rebuilt) [also changed: input]
step 5/6 RUN go build -ldflags "-X main.version=$VERSION" -o /out/app ./src: parent changed (step 4 was rebuilt)
step 6/6 COPY --from=build /out/app /bin/app: input changed: stage build (step 5 was rebuilt)`,
}

// TestExplainBuildWalkthrough: a scenario of edits, a new base and a
// dependency change, explained build after build.
func TestExplainBuildWalkthrough(t *testing.T) {
	t.Parallel()
	got := walkthrough()
	if diff := cmp.Diff(walkthroughWant, got); diff != "" {
		t.Errorf("ExplainBuild over the walkthrough (-want +got):\n%s", diff)
	}
}

// docExamples returns the fenced blocks of docs/cache.md that follow a
// "<!-- example: NAME -->" line.
func docExamples(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile("../docs/cache.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		name, ok := strings.CutPrefix(lines[i], "<!-- example: ")
		if !ok {
			continue
		}
		name = strings.TrimSuffix(name, " -->")
		j := i + 1
		for j < len(lines) && !strings.HasPrefix(lines[j], "```") {
			j++
		}
		k := j + 1
		for k < len(lines) && !strings.HasPrefix(lines[k], "```") {
			k++
		}
		if k >= len(lines) {
			t.Fatalf("docs/cache.md: example %s has no fenced block", name)
		}
		out[name] = strings.Join(lines[j+1:k], "\n")
		i = k
	}
	return out
}

// TestDocReasons keeps the list of explain wordings in docs/cache.md
// true. (The walkthrough there runs the real binary: integration's
// TestCacheDocWalkthrough checks it.)
func TestDocReasons(t *testing.T) {
	t.Parallel()
	doc := docExamples(t)
	_, cases := reasonCases()
	var wordings []string
	for _, c := range cases {
		wordings = append(wordings, c.want)
	}
	if diff := cmp.Diff(doc["reasons"], strings.Join(wordings, "\n")); diff != "" {
		t.Errorf("docs/cache.md example \"reasons\" is stale (-doc +code):\n%s", diff)
	}
}

func TestExplainBuildMatching(t *testing.T) {
	t.Parallel()
	records := map[v1.Hash]bool{}
	listings := fakeListings{}
	w := walkthroughWorld()
	first := play(w, records, listings)
	// A pruned record: same key, miss.
	delete(records, first.Steps[2].Key)
	again := play(w, records, listings)
	reps := cache.ExplainBuild(&first, again, listings)
	if r := reps[2].Reason; r == nil || r.Kind != cache.ReasonRecordMissing {
		t.Errorf("pruned step: reason %v, want %s", r, cache.ReasonRecordMissing)
	}
	if r := reps[3].Reason; r != nil {
		// The rebuilt step has the same key, so the next one still hits.
		t.Errorf("step after the pruned one: reason %v, want a hit", r)
	}
	// --no-cache.
	again.Steps[0].Cached, again.Steps[0].NoCache = false, true
	if r := cache.ExplainBuild(&first, again, nil)[0].Reason; r == nil || r.Kind != cache.ReasonNoCache {
		t.Errorf("no-cache step: reason %v", r)
	}
	// A step inserted into a stage matches by parent, not by position.
	inserted := again
	inserted.Steps = append([]cache.StepLog(nil), again.Steps...)
	extra := again.Steps[1]
	extra.Parts.Instruction = "COPY Makefile ./"
	extra.Key, extra.Cached, extra.NoCache = extra.Parts.Key(), false, false
	inserted.Steps = append(inserted.Steps[:1], append([]cache.StepLog{extra}, inserted.Steps[1:]...)...)
	r := cache.ExplainBuild(&first, inserted, nil)[1].Reason
	if r == nil || r.Kind != cache.ReasonInstruction {
		t.Errorf("inserted step: reason %v, want %s", r, cache.ReasonInstruction)
	}
	// A step the build did not reach.
	stopped := again
	stopped.Steps = append([]cache.StepLog(nil), again.Steps...)
	stopped.Steps[4] = cache.StepLog{Index: 5, Total: 6, Stage: "build", Text: "RUN go build"}
	if r := cache.ExplainBuild(&first, stopped, nil)[4].Reason; r == nil || r.Kind != cache.ReasonNotRun {
		t.Errorf("unreached step: reason %v, want %s", r, cache.ReasonNotRun)
	}
	// A previous build that stopped early: its unreached steps match nothing.
	if r := cache.ExplainBuild(&stopped, again, nil)[4].Reason; r != nil {
		t.Errorf("step cached now, unreached before: reason %v, want a hit", r)
	}
	again.Steps[4].Cached = false
	if r := cache.ExplainBuild(&stopped, again, nil)[4].Reason; r == nil || r.Kind != cache.ReasonNewStep {
		t.Errorf("step missed now, unreached before: reason %v, want %s", r, cache.ReasonNewStep)
	}
	again.Steps[4].Cached = true
	// A stage that did not exist before.
	renamed := again
	renamed.Steps = append([]cache.StepLog(nil), again.Steps...)
	renamed.Steps[5].Stage, renamed.Steps[5].Cached = "final", false
	if r := cache.ExplainBuild(&first, renamed, nil)[5].Reason; r == nil || r.Kind != cache.ReasonNewStep {
		t.Errorf("step of a new stage: reason %v, want %s", r, cache.ReasonNewStep)
	}
}
