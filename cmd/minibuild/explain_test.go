package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"minibuild/builder"
	"minibuild/cache"
)

// editResult is a two-stage build after an edit of src/main.go: the
// builder stage's COPY missed, the RUN after it missed because of it, and
// the final stage's COPY --from missed because the stage changed. Steps
// come in the order they finished.
func editResult() *builder.Result {
	h := func(c string) v1.Hash { return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(c, 64)} }
	input := cache.Reason{Kind: cache.ReasonInput, Inputs: []cache.InputChange{{
		Kind: cache.InputContext, Change: cache.Changed, Old: h("1"), New: h("2"),
		Files: []cache.FileChange{{Path: "src/main.go", Kinds: []cache.ChangeKind{cache.ChangeContent}}, {Path: "src/new.go", Kinds: []cache.ChangeKind{cache.ChangeAdded}}},
	}}}
	parent := cache.Reason{Kind: cache.ReasonParent, Parent: &cache.ParentChange{
		Old: cache.Parent{Kind: cache.ParentStep, Digest: h("3")}, New: cache.Parent{Kind: cache.ParentStep, Digest: h("4")},
		Step: &cache.StepRef{Index: 2, Total: 3, Stage: "builder"},
	}}
	stage := cache.Reason{Kind: cache.ReasonInput, Inputs: []cache.InputChange{{
		Kind: cache.InputStage, Name: "builder", Change: cache.Changed, Old: h("5"), New: h("6"),
		Step: &cache.StepRef{Index: 3, Total: 3, Stage: "builder"},
	}}}
	return &builder.Result{Steps: []builder.StepResult{
		{Name: "[builder 1/3] FROM busybox", Stage: "builder", Step: 1, Steps: 3, Cached: true, Location: builder.Location{Start: 1}},
		{Name: "[stage-1 1/2] FROM scratch", Stage: "stage-1", Step: 1, Steps: 2, Cached: true, Location: builder.Location{Start: 5}},
		{Name: "[builder 2/3] COPY src/ /app/src", Stage: "builder", Step: 2, Steps: 3, Key: h("4"), Reason: input, Location: builder.Location{Start: 2}, Duration: time.Second},
		{Name: "[builder 3/3] RUN make", Stage: "builder", Step: 3, Steps: 3, Key: h("6"), Reason: parent, Location: builder.Location{Start: 3}},
		{Name: "[stage-1 2/2] COPY --from=builder /app/bin /", Stage: "stage-1", Step: 2, Steps: 2, Key: h("7"), Reason: stage, Location: builder.Location{Start: 6}},
	}}
}

func TestPrintExplain(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	printExplain(&b, stepsFromResult(editResult()))
	want := `Cache report, compared with the last build of this Dockerfile in this store:
stage builder:
  cached   step 1/3 FROM busybox
  rebuilt  step 2/3 COPY src/ /app/src: input changed: src/main.go (content), src/new.go (added)
  rebuilt  step 3/3 RUN make: parent changed (step 2 was rebuilt)
stage stage-1:
  cached   step 1/2 FROM scratch
  rebuilt  step 2/2 COPY --from=builder /app/bin /: input changed: stage builder (step 3 was rebuilt)

2 of 5 steps cached, 3 rebuilt. The first rebuilt step is step 2/3 COPY src/ /app/src (Dockerfile line 2).
A rebuilt step gives every later step of its stage a new parent, so those are rebuilt too.
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("printExplain (-want +got):\n%s", diff)
	}

	b.Reset()
	printExplain(&b, stepsFromResult(&builder.Result{Steps: []builder.StepResult{
		{Name: "[1/2] FROM busybox", Step: 1, Steps: 2, Cached: true},
		{Name: "[2/2] COPY . /", Step: 2, Steps: 2, Cached: true},
	}}))
	want = "Cache report, compared with the last build of this Dockerfile in this store:\n  cached   step 1/2 FROM busybox\n  cached   step 2/2 COPY . /\n\nAll 2 steps cached: nothing this build reads has changed since the last one.\n"
	if got := b.String(); got != want {
		t.Errorf("printExplain(all cached) = %q, want %q", got, want)
	}
}

func TestPrintExplainJSON(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	if err := printExplainJSON(&b, stepsFromResult(editResult())); err != nil {
		t.Fatal(err)
	}
	var got []struct {
		Stage  string
		Index  int
		Text   string
		Cached bool
		Why    string
		Reason *struct{ Kind string }
	}
	if err := json.Unmarshal([]byte(b.String()), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got[2].Text != "RUN make" || got[2].Reason.Kind != "parent" || got[2].Why != "parent changed (step 2 was rebuilt)" || got[0].Reason != nil {
		t.Errorf("explain --json = %+v", got)
	}
}

func TestPrintMissed(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	if n := printMissed(&b, stepsFromResult(editResult())); n != 3 {
		t.Errorf("printMissed = %d, want 3", n)
	}
	want := "minibuild: --expect-cached: 3 of 5 steps were not cached:\n" +
		"  step 2/3 COPY src/ /app/src: input changed: src/main.go (content), src/new.go (added)\n" +
		"  step 3/3 RUN make: parent changed (step 2 was rebuilt)\n" +
		"  step 2/2 COPY --from=builder /app/bin /: input changed: stage builder (step 3 was rebuilt)\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("printMissed (-want +got):\n%s", diff)
	}
}

func TestBuildMetadata(t *testing.T) {
	t.Parallel()
	res := editResult()
	res.Manifest = v1.Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 10, Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}}
	res.Config = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("c", 64)}
	res.Tags = []string{"docker.io/library/a:latest", "docker.io/library/b:1"}
	b, err := json.Marshal(newBuildMetadata(res))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.Unmarshal(b, &got)
	if got["containerimage.digest"] != res.Manifest.Digest.String() || got["containerimage.config.digest"] != res.Config.String() ||
		got["image.name"] != "docker.io/library/a:latest,docker.io/library/b:1" {
		t.Errorf("metadata = %s", b)
	}
	steps := got["minibuild.steps"].([]any)
	s2 := steps[2].(map[string]any)
	if len(steps) != 5 || s2["name"] != "[builder 2/3] COPY src/ /app/src" || s2["cached"] != false || s2["duration_ms"] != 1000.0 ||
		s2["reason"] != "input changed: src/main.go (content), src/new.go (added)" || s2["key"] != "sha256:"+strings.Repeat("4", 64) {
		t.Errorf("metadata step 2 = %v", s2)
	}
	if s0 := steps[0].(map[string]any); s0["cached"] != true || s0["reason"] != nil {
		t.Errorf("metadata step 0 = %v", s0)
	}
}
