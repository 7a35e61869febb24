package inspect

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"minibuild/oci"
)

// baseSpec is a base image: its root files and ENV.
type baseSpec struct {
	files []tf
	env   []string
	more  []step
}

func makeBase(t *testing.T, s *oci.Store, name string, b baseSpec) *Image {
	t.Helper()
	steps := []step{{createdBy: "ADD rootfs / # buildkit", layer: b.files}}
	if len(b.env) > 0 {
		steps = append(steps, envStep(b.env...))
	}
	return build(t, s, nil, name, append(steps, b.more...)...)
}

// rootfs is a base's files with /etc/passwd as given.
func rootfs(passwd string, extra ...tf) []tf {
	return append([]tf{
		dir("bin", 0o755), file("bin/sh", "#!sh"), dir("etc", 0o755), file("etc/passwd", passwd),
	}, extra...)
}

func TestRebase(t *testing.T) {
	t.Parallel()
	v1Files := rootfs("root:x:0:0::/root:/bin/sh\n")
	tests := []struct {
		name     string
		v1, v2   baseSpec
		app      []step
		warnings int
		// differs: a rebuild gives another config (what the warnings say).
		differs bool
	}{
		{
			name: "PATH suffix",
			v1:   baseSpec{files: v1Files, env: []string{"PATH=/usr/bin:/bin"}},
			v2:   baseSpec{files: v1Files, env: []string{"PATH=/usr/local/bin:/usr/bin:/bin"}},
			app: []step{
				envStep("PATH=$PATH:/app/bin"),
				step{createdBy: "COPY tool /app/bin/ # buildkit", layer: []tf{dir("app", 0o755), dir("app/bin", 0o755), file("app/bin/tool", "x")}},
				cmdStep("tool"),
			},
		},
		{
			name: "JAVA_HOME the base changed",
			v1:   baseSpec{files: v1Files, env: []string{"JAVA_HOME=/opt/jdk17", "PATH=/opt/jdk17/bin:/usr/bin"}},
			v2:   baseSpec{files: append(rootfs("root:x:0:0::/root:/bin/sh\n"), dir("opt", 0o755), file("opt/jdk21", "jdk")), env: []string{"JAVA_HOME=/opt/jdk21", "PATH=/opt/jdk21/bin:/usr/bin"}},
			app: []step{
				envStep("PATH=/app/bin:$PATH"),
				step{createdBy: "COPY app.jar /app/ # buildkit", layer: []tf{dir("app", 0o755), file("app/app.jar", "jar")}},
			},
		},
		{
			name: "ENV the app overrides",
			v1:   baseSpec{files: v1Files, env: []string{"LANG=C", "PATH=/usr/bin"}},
			v2:   baseSpec{files: v1Files, env: []string{"LANG=C.UTF-8", "PATH=/usr/bin", "TZ=UTC"}},
			app: []step{
				envStep("LANG=en_US.UTF-8", "APP=1"),
				runStep("echo > /app.txt", file("app.txt", "\n")),
			},
		},
		{
			name: "inherited CMD, LABEL and WORKDIR follow the new base",
			v1: baseSpec{files: v1Files, more: []step{
				{createdBy: "LABEL version=1 vendor=acme", config: func(c *v1.Config, _ func(string) string) {
					c.Labels = map[string]string{"version": "1", "vendor": "acme"}
				}},
				{createdBy: "WORKDIR /srv", config: func(c *v1.Config, _ func(string) string) { c.WorkingDir = "/srv" }},
				cmdStep("sh"),
			}},
			v2: baseSpec{files: v1Files, more: []step{
				{createdBy: "LABEL version=2 vendor=acme", config: func(c *v1.Config, _ func(string) string) {
					c.Labels = map[string]string{"version": "2", "vendor": "acme"}
				}},
				{createdBy: "WORKDIR /data", config: func(c *v1.Config, _ func(string) string) { c.WorkingDir = "/data" }},
				cmdStep("bash"),
			}},
			app: []step{
				{createdBy: "LABEL app=x", config: func(c *v1.Config, _ func(string) string) { c.Labels["app"] = "x" }},
				runStep("touch /x", file("x", "")),
			},
		},
		{
			name: "ENV derived from a variable the base changed",
			v1:   baseSpec{files: v1Files, env: []string{"JAVA_HOME=/opt/jdk17"}},
			v2:   baseSpec{files: v1Files, env: []string{"JAVA_HOME=/opt/jdk21"}},
			app: []step{
				envStep("JAVA=$JAVA_HOME/bin/java"),
				runStep("true", file("ok", "")),
			},
			warnings: 1,
			differs:  true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			b1 := makeBase(t, s, "base:1", tt.v1)
			b2 := makeBase(t, s, "base:2", tt.v2)
			app1 := build(t, s, b1, "app:1", tt.app...)
			want := build(t, s, b2, "app:want", tt.app...)

			p, err := PlanRebase(context.Background(), s, RebaseRequest{Image: "app:1", Onto: "base:2", Tag: "app:rebased"})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Conflicts) != 0 {
				t.Errorf("PlanRebase() conflicts = %+v, want none", p.Conflicts)
			}
			if len(p.Warnings) != tt.warnings {
				t.Errorf("PlanRebase() warnings = %q, want %d", p.Warnings, tt.warnings)
			}
			if p.OldBase.Descriptor.Digest != b1.Descriptor.Digest {
				t.Errorf("PlanRebase() old base = %s, want base:1 %s", p.OldBase.Descriptor.Digest, b1.Descriptor.Digest)
			}
			if _, err := p.Write(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := open(t, s, "app:rebased")
			if !tt.differs {
				sameImage(t, got, want)
			}
			if n := len(p.Kept); n != len(app1.Manifest.Layers)-len(b1.Manifest.Layers) {
				t.Errorf("PlanRebase() kept %d layers", n)
			}
		})
	}
}

// sameImage fails t unless got and want have the same config, layers,
// base annotations and merged tree.
func sameImage(t *testing.T, got, want *Image) {
	t.Helper()
	if diff := cmp.Diff(want.Config, got.Config); diff != "" {
		t.Errorf("rebased config mismatch (-built on v2 +rebased):\n%s", diff)
	}
	if diff := cmp.Diff(want.Manifest.Layers, got.Manifest.Layers); diff != "" {
		t.Errorf("rebased layers mismatch (-built on v2 +rebased):\n%s", diff)
	}
	if diff := cmp.Diff(want.Manifest.Annotations, got.Manifest.Annotations); diff != "" {
		t.Errorf("rebased annotations mismatch (-built on v2 +rebased):\n%s", diff)
	}
	changes, err := DiffImages(context.Background(), want, got)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 0 {
		t.Errorf("DiffImages(built on v2, rebased) = %v, want no change", lines(changes))
	}
	if got.Descriptor.Digest != want.Descriptor.Digest {
		t.Errorf("rebased manifest %s, built on v2 %s: want the same image", got.Descriptor.Digest, want.Descriptor.Digest)
	}
}

func TestRebaseConflicts(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	makeBase(t, s, "base:1", baseSpec{files: rootfs("root:x:0:0::/root:/bin/sh\n", dir("usr", 0o755), dir("usr/share", 0o755),
		dir("usr/share/doc", 0o755), file("usr/share/doc/a", "a1"), file("lib.so", "v1"))})
	makeBase(t, s, "base:2", baseSpec{files: rootfs("root:x:0:0::/root:/bin/sh\nnews:x:9:9::/:/bin/false\n", dir("usr", 0o755), dir("usr/share", 0o755),
		dir("usr/share/doc", 0o755), file("usr/share/doc/a", "a2"), file("usr/share/doc/b", "b"), file("lib.so", "v2"))})
	build(t, s, open(t, s, "base:1"), "app",
		runStep("adduser app", dir("etc", 0o755), file("etc/passwd", "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n")),
		runStep("rm -rf /usr/share/doc", dir("usr", 0o755), dir("usr/share", 0o755), whiteout("usr/share", "doc")),
		runStep("cp lib.so", file("lib.so", "v2")), // what the new base has: no conflict
	)
	p, err := PlanRebase(context.Background(), s, RebaseRequest{Image: "app", Onto: "base:2"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Conflict{
		{Path: "/etc/passwd", Image: "writes", Layer: 2, Base: Changed, Fields: []string{"content"}},
		{Path: "/usr/share/doc/a", Image: "deletes", Under: "/usr/share/doc", Layer: 3, Base: Changed, Fields: []string{"content"}},
		{Path: "/usr/share/doc/b", Image: "deletes", Under: "/usr/share/doc", Layer: 3, Base: Added},
	}
	if diff := cmp.Diff(want, p.Conflicts); diff != "" {
		t.Errorf("PlanRebase().Conflicts mismatch (-want +got):\n%s", diff)
	}
	if p.Tag != "docker.io/library/app:latest" {
		t.Errorf("PlanRebase().Tag = %q, want the image's own name", p.Tag)
	}
}

func TestRebaseRefusals(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	b1 := makeBase(t, s, "base:1", baseSpec{files: rootfs("root\n"), env: []string{"A=1"}})
	makeBase(t, s, "base:2", baseSpec{files: rootfs("root\nx\n")})
	// Same layer as base:1, other history.
	build(t, s, nil, "lookalike", step{createdBy: "ADD other / # buildkit", layer: rootfs("root\n")}, envStep("A=1"))
	build(t, s, b1, "app", runStep("true", file("x", "")))
	build(t, s, nil, "nobase", runStep("true", file("x", "")))
	untagged := build(t, s, b1, "untagged", runStep("true", file("y", "")))
	if err := s.Untag("untagged"); err != nil {
		t.Fatal(err)
	}
	b2 := open(t, s, "base:2")
	arm := b2.Config.DeepCopy()
	arm.Architecture, arm.Variant = "arm64", "v8"
	d, err := s.PutImage(context.Background(), arm, b2.Manifest.Layers, nil)
	if err == nil {
		err = s.Tag(context.Background(), "base:arm64", d)
	}
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		req  RebaseRequest
		is   error
		msg  string
	}{
		{"old base not a layer prefix", RebaseRequest{Image: "app", Onto: "base:2", From: "base:2"}, ErrNotPrefix,
			"base:2 is not the base of app: layer 1 differs"},
		{"old base not a history prefix", RebaseRequest{Image: "app", Onto: "base:2", From: "lookalike"}, ErrNotPrefix,
			`lookalike is not the base of app: history entry 1 differs: the image has "ADD rootfs /", the base has "ADD other /"`},
		{"old base longer than the image", RebaseRequest{Image: "base:1", Onto: "base:2", From: "app"}, ErrNotPrefix,
			"layer 2 differs: the image has nothing"},
		{"no base recorded", RebaseRequest{Image: "nobase", Onto: "base:2"}, ErrNoBase, "records no"},
		{"no tag", RebaseRequest{Image: untagged.Descriptor.Digest.String(), Onto: "base:2"}, ErrNoTag, "no tag"},
		{"missing new base", RebaseRequest{Image: "app", Onto: "nothere"}, oci.ErrNotFound, "new base"},
		{"new base for another platform", RebaseRequest{Image: "app", Onto: "base:arm64"}, nil, "the new base is linux/arm64/v8, the image linux/amd64"},
		{"bad result name", RebaseRequest{Image: "app", Onto: "base:2", Tag: "Bad Name"}, oci.ErrInvalid, "result name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := PlanRebase(context.Background(), s, tt.req)
			if err == nil || tt.is != nil && !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("PlanRebase(%+v) = %v, want an error wrapping %v saying %q", tt.req, err, tt.is, tt.msg)
			}
		})
	}
}

func TestRebaseBaseTagMoved(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	b1 := makeBase(t, s, "base", baseSpec{files: rootfs("root\n")})
	build(t, s, b1, "app", runStep("true", file("x", "")))
	build(t, s, b1, "app2", runStep("true", file("y", "")))
	b2 := makeBase(t, s, "base", baseSpec{files: rootfs("root\nx\n")}) // "base" moves to v2

	p, err := PlanRebase(context.Background(), s, RebaseRequest{Image: "app", Onto: "base"})
	if err != nil {
		t.Fatal(err)
	}
	if p.OldBase.Descriptor.Digest != b1.Descriptor.Digest || p.NewBase.Descriptor.Digest != b2.Descriptor.Digest {
		t.Errorf("PlanRebase() bases %s → %s, want %s → %s", p.OldBase.Descriptor.Digest, p.NewBase.Descriptor.Digest, b1.Descriptor.Digest, b2.Descriptor.Digest)
	}
	if len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "has moved since the image was built") {
		t.Errorf("PlanRebase().Notes = %q, want a note that the base tag moved", p.Notes)
	}
	d, err := p.Write(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	again, err := PlanRebase(context.Background(), s, RebaseRequest{Image: "app", Onto: "base"})
	if err != nil {
		t.Fatal(err)
	}
	if !again.UpToDate {
		t.Errorf("PlanRebase() of a rebased image: UpToDate = false")
	}
	if d2, err := again.Write(context.Background()); err != nil || d2.Digest != d.Digest {
		t.Errorf("Write() of an up-to-date plan = %v, %v, want %s", d2.Digest, err, d.Digest)
	}

	// The old base gone from the store (untagged since "base" moved, then
	// collected): say that the tag moved.
	if _, err := s.GC(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if s.HasBlob(b1.Descriptor.Digest) {
		t.Fatal("GC kept the untagged old base")
	}
	_, err = PlanRebase(context.Background(), s, RebaseRequest{Image: "app2", Onto: "base"})
	if !errors.Is(err, oci.ErrNotFound) || !strings.Contains(err.Error(), "has moved since the build") {
		t.Errorf("PlanRebase() with the old base gone = %v, want a not-found error saying the tag moved", err)
	}
}

func TestMergeEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                string
		old, new, img, want []string
		set                 []string
		actions             map[string]EnvAction
	}{
		{
			name:    "suffix, prefix and both",
			old:     []string{"PATH=/usr/bin", "LD=/lib", "PY=/p"},
			new:     []string{"PATH=/usr/local/bin:/usr/bin", "LD=/lib64", "PY=/q"},
			img:     []string{"PATH=/usr/bin:/app", "LD=/opt:/lib", "PY=/a:/p:/b"},
			want:    []string{"PATH=/usr/local/bin:/usr/bin:/app", "LD=/opt:/lib64", "PY=/a:/q:/b"},
			actions: map[string]EnvAction{"PATH": EnvExtended, "LD": EnvExtended, "PY": EnvExtended},
		},
		{
			name:    "not on a colon boundary",
			old:     []string{"V=/usr"},
			new:     []string{"V=/opt"},
			img:     []string{"V=/usr/local"},
			want:    []string{"V=/usr/local"},
			actions: map[string]EnvAction{"V": EnvImage},
		},
		{
			name:    "inherited, dropped and added",
			old:     []string{"A=1", "B=2"},
			new:     []string{"C=3", "A=9"},
			img:     []string{"A=1", "B=2", "MINE=x"},
			want:    []string{"C=3", "A=9", "MINE=x"},
			actions: map[string]EnvAction{"A": EnvInherited, "B": EnvDropped, "C": EnvAdded, "MINE": EnvImage},
		},
		{
			name:    "set to the base's value on purpose",
			old:     []string{"A=1"},
			new:     []string{"A=2"},
			img:     []string{"A=1"},
			set:     []string{"A"},
			want:    []string{"A=1"},
			actions: map[string]EnvAction{"A": EnvImage},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			set := map[string]bool{}
			for _, k := range tt.set {
				set[k] = true
			}
			got, ds := mergeEnv(tt.old, tt.new, tt.img, set)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mergeEnv() mismatch (-want +got):\n%s", diff)
			}
			actions := map[string]EnvAction{}
			for _, d := range ds {
				actions[d.Name] = d.Action
			}
			if diff := cmp.Diff(tt.actions, actions); diff != "" {
				t.Errorf("mergeEnv() actions mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRebaseNameOnlyBase(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	b1 := makeBase(t, s, "base", baseSpec{files: rootfs("root\n")})
	app := build(t, s, b1, "app", runStep("true", file("x", "")))
	// An image that records its base by name only, built before the tag moved.
	d, err := s.PutImage(context.Background(), app.Config, app.Manifest.Layers, map[string]string{AnnotationBaseName: b1.Name})
	if err == nil {
		err = s.Tag(context.Background(), "app:name-only", d)
	}
	if err != nil {
		t.Fatal(err)
	}
	p, err := PlanRebase(context.Background(), s, RebaseRequest{Image: "app:name-only", Onto: "base"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "records no base digest") {
		t.Errorf("PlanRebase() of a name-only image: notes %q, want one saying the name was taken as it is now", p.Notes)
	}
	makeBase(t, s, "base", baseSpec{files: rootfs("root\nx\n")}) // "base" moves
	_, err = PlanRebase(context.Background(), s, RebaseRequest{Image: "app:name-only", Onto: "base"})
	if !errors.Is(err, ErrNotPrefix) || !strings.Contains(err.Error(), "may have moved since the build") {
		t.Errorf("PlanRebase() after the base tag moved = %v, want a refusal saying the tag may have moved", err)
	}
}
