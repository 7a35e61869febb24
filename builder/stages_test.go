package builder

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func stageNames(stages []*Stage) []string {
	var out []string
	for _, s := range stages {
		out = append(out, s.DisplayName)
	}
	return out
}

// TestStageGraph checks the DAG: what the target needs, in order.
// After BuildKit's dockerfile_targets_test.go and multistage tests.
func TestStageGraph(t *testing.T) {
	t.Parallel()
	df := `FROM scratch AS base
COPY a /a
FROM base AS build
COPY b /b
FROM scratch AS unused
COPY --from=missing-image /x /x
FROM scratch AS docs
COPY c /c
FROM build AS final
COPY --from=docs /c /docs
COPY --from=0 /a /a0
`
	tests := []struct {
		target string
		order  []string
	}{
		{"", []string{"base", "build", "docs", "final"}},
		{"build", []string{"base", "build"}},
		{"BUILD", []string{"base", "build"}}, // stage names are case-insensitive
		{"docs", []string{"docs"}},
	}
	for _, tc := range tests {
		// "unused" copies from an image the store does not have: it is
		// never resolved because no target needs it.
		p := mustParse(t, df, Request{Target: tc.target}, fakeImages{})
		if diff := cmp.Diff(tc.order, stageNames(p.Order)); diff != "" {
			t.Errorf("target %q: order (-want +got):\n%s", tc.target, diff)
		}
		if p.Order[len(p.Order)-1] != p.Target {
			t.Errorf("target %q: Order does not end with the target", tc.target)
		}
	}
	p := mustParse(t, df, Request{}, fakeImages{})
	final := p.Target
	if diff := cmp.Diff([]string{"build", "docs", "base"}, stageNames(final.Deps)); diff != "" {
		t.Errorf("final deps (-want +got):\n%s", diff)
	}
	if final.From.Kind != FromStage || final.From.Stage.Name != "build" {
		t.Errorf("final base = %+v, want stage build", final.From)
	}
	if got := final.Steps[1].Copy.From; got.Kind != FromStageResult || got.Stage.Name != "base" || got.Ref != "0" {
		t.Errorf("COPY --from=0 = %+v, want stage base", got)
	}
	if p.Stages[2].Steps != nil {
		t.Error("a stage the target does not need was planned")
	}
	for i, s := range final.Steps {
		if s.Index != i+1 || s.Total != 2 || s.Stage != final {
			t.Errorf("step %d: index %d/%d stage %v", i, s.Index, s.Total, s.Stage.DisplayName)
		}
	}
}

func TestUnnamedStagesAndImages(t *testing.T) {
	t.Parallel()
	img := testImage("docker.io/library/alpine:3", v1.Config{})
	p := mustParse(t, "FROM alpine:3\nFROM scratch\nCOPY --from=alpine:3 /etc/os-release /\nCOPY --from=0 / /zero\n", Request{}, fakeImages{"alpine:3": img})
	if got := stageNames(p.Order); !cmp.Equal(got, []string{"stage-0", "stage-1"}) {
		t.Errorf("order = %v", got)
	}
	from := p.Target.Steps[0].Copy.From
	if from.Kind != FromImageRoot || from.Image != img || from.Ref != "alpine:3" {
		t.Errorf("COPY --from=alpine:3 = %+v, want the resolved image", from)
	}
	if p.Stages[0].From.Kind != FromImage || p.Stages[0].From.Image != img {
		t.Errorf("FROM alpine:3 = %+v", p.Stages[0].From)
	}
}

// TestBuildContexts covers --build-context name=DIR and image forms, in
// FROM and COPY --from, and a context replacing a stage of its name
// (BuildKit's named contexts, dockerfile_namedcontext_test.go).
func TestBuildContexts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	layout := testImage("oci-layout:///layouts/app:v1", v1.Config{Env: []string{"FROM_LAYOUT=1"}})
	images := fakeImages{"oci-layout:///layouts/app:v1": layout}
	df := "FROM scratch AS replaced\nCOPY x /x\nFROM app AS fromlayout\nFROM scratch\nCOPY --from=assets /logo.png /\nCOPY --from=replaced / /r\nCOPY --from=docker.io/library/app:latest / /l\n"
	p := mustParse(t, df, Request{BuildContexts: map[string]string{
		"assets":   dir,
		"replaced": "docker-image://busybox",
		"app":      "oci-layout:///layouts/app:v1",
	}}, fakeImages{"busybox": testImage("docker.io/library/busybox:latest", v1.Config{}), "oci-layout:///layouts/app:v1": layout})
	steps := p.Target.Steps
	if got := steps[0].Copy.From; got.Kind != FromNamedDir || got.Dir != dir {
		t.Errorf("COPY --from=assets = %+v, want directory %s", got, dir)
	}
	replaced := p.Stages[0]
	if replaced.From.Kind != FromImage || replaced.From.Image.Name != "docker.io/library/busybox:latest" || replaced.Steps != nil {
		t.Errorf("stage replaced by a context = %+v with %d steps, want the busybox image and no steps", replaced.From, len(replaced.Steps))
	}
	if got := steps[2].Copy.From; got.Kind != FromImageRoot || got.Image != layout {
		t.Errorf("COPY --from=docker.io/library/app:latest = %+v, want the layout image (names normalized)", got)
	}
	p = mustParse(t, df, Request{Target: "fromlayout", BuildContexts: map[string]string{"app": "oci-layout:///layouts/app:v1"}}, images)
	if v, _ := envOf(p, "FROM_LAYOUT"); v != "1" || p.Target.From.Kind != FromImage {
		t.Errorf("FROM app with an oci-layout context: base %+v env %v", p.Target.From, p.Target.Config.Config.Env)
	}
}

func TestOnBuildTriggers(t *testing.T) {
	t.Parallel()
	base := testImage("docker.io/library/onbuild:latest", v1.Config{OnBuild: []string{"COPY --from=helper /tool /tool", "ENV TRIGGERED=1"}})
	df := "FROM scratch AS helper\nCOPY tool /tool\nFROM onbuild\nENV MINE=1\n"
	p := mustParse(t, df, Request{}, fakeImages{"onbuild": base})
	if diff := cmp.Diff([]string{"helper", "stage-1"}, stageNames(p.Order)); diff != "" {
		t.Errorf("a trigger's COPY --from must pull its stage in (-want +got):\n%s", diff)
	}
	steps := p.Target.Steps
	if len(steps) != 3 || !steps[0].OnBuild || !steps[1].OnBuild || steps[2].OnBuild {
		t.Fatalf("steps = %d, want 2 triggers then ENV MINE", len(steps))
	}
	if steps[0].Location != p.Target.Location {
		t.Errorf("trigger location = %v, want the FROM line %v", steps[0].Location, p.Target.Location)
	}
	if steps[0].Copy.From.Stage != p.Stages[0] {
		t.Error("trigger COPY --from=helper not resolved to the stage")
	}

	// ONBUILD of a base *stage* runs in stages built from it, once.
	df = "FROM scratch AS a\nONBUILD ENV X=1\nFROM a AS b\nFROM b\n"
	p = mustParse(t, df, Request{}, nil)
	if got := createdBy(p); len(got) != 0 {
		t.Errorf("grandchild history = %q, want no trigger (triggers do not carry over)", got)
	}
	p = mustParse(t, df, Request{Target: "b"}, nil)
	if got := createdBy(p); !cmp.Equal(got, []string{"ENV X=1"}) {
		t.Errorf("child history = %q, want the trigger", got)
	}
}

func TestDockerfileOutsideContext(t *testing.T) {
	t.Parallel()
	ctx := t.TempDir()
	other := t.TempDir()
	df := filepath.Join(other, "build.Dockerfile")
	if err := os.WriteFile(df, []byte("FROM scratch\nCOPY . /\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(df+".dockerignore", []byte("secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctx, ".dockerignore"), []byte("other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Parse(t.Context(), Request{Dockerfile: df, Context: ctx}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Context.Dir != ctx || !cmp.Equal(p.Context.Ignore, []string{"secret"}) {
		t.Errorf("context = %+v, want %s with the Dockerfile's own ignore file", p.Context, ctx)
	}
	if _, err := Parse(t.Context(), Request{Dockerfile: filepath.Join(other, "missing"), Context: ctx}, nil); err == nil {
		t.Error("Parse of a missing Dockerfile succeeded")
	}
}
