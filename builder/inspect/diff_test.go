package inspect

import (
	"archive/tar"
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// line is a change as `minibuild diff` prints it, for comparing.
type line struct {
	Kind   ChangeKind
	Path   string
	Size   int64
	Fields string
}

func lines(cs []Change) []line {
	out := []line{}
	for _, c := range cs {
		out = append(out, line{c.Kind, c.Path, c.Size, strings.Join(c.Fields, ",")})
	}
	return out
}

func TestDiffLayer(t *testing.T) {
	t.Parallel()
	lower := []tf{
		dir("d", 0o755), file("d/a", "123"), dir("d/sub", 0o755), file("d/sub/x", "4567"),
		dir("e", 0o755), file("e/keep", "1"), file("e/gone", "22"),
		file("f", "hello"), dir("g", 0o755), file("g/in", "999"),
	}
	tests := []struct {
		name  string
		layer []tf
		want  []line
	}{
		{
			name:  "added and changed",
			layer: []tf{dir("d", 0o755), file("d/a", "12"), file("d/new", "abc"), {name: "f", body: "hello", mode: 0o600}},
			want: []line{
				{Changed, "/d", 0, ""},
				{Changed, "/d/a", 2, "content"},
				{Added, "/d/new", 3, ""},
				{Changed, "/f", 5, "mode"},
			},
		},
		{
			name:  "whiteout of a file",
			layer: []tf{dir("e", 0o755), whiteout("e", "gone")},
			want:  []line{{Changed, "/e", 0, ""}, {Deleted, "/e/gone", 2, ""}},
		},
		{
			name:  "whiteout of a directory",
			layer: []tf{whiteout("", "d")},
			want:  []line{{Deleted, "/d", 7, ""}},
		},
		{
			name:  "opaque directory",
			layer: []tf{dir("d", 0o700), opaque("d"), file("d/a", "123"), file("d/b", "new")},
			want: []line{
				{Changed, "/d", 0, "mode"},
				{Changed, "/d/a", 3, ""},
				{Added, "/d/b", 3, ""},
				{Deleted, "/d/sub", 4, ""},
			},
		},
		{
			name:  "opaque marker before the directory's entries",
			layer: []tf{opaque("e"), dir("e", 0o755), file("e/keep", "2")},
			want:  []line{{Changed, "/e", 0, ""}, {Deleted, "/e/gone", 2, ""}, {Changed, "/e/keep", 1, "content"}},
		},
		{
			name:  "directory replaced by a file",
			layer: []tf{file("g", "now a file")},
			want:  []line{{Changed, "/g", 10, "type,mode"}, {Deleted, "/g/in", 3, ""}},
		},
		{
			name:  "symlink",
			layer: []tf{{name: "f", typ: tar.TypeSymlink, link: "d/a", mode: 0o777}},
			want:  []line{{Changed, "/f", 0, "type,mode,content,link"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			im := build(t, s, nil, "img", runStep("lower", lower...), runStep("upper", tt.layer...))
			for _, n := range []int{2, -1} {
				d, err := im.DiffLayer(context.Background(), n)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, lines(d.Changes)); diff != "" {
					t.Errorf("DiffLayer(%d) mismatch (-want +got):\n%s", n, diff)
				}
				if d.Layer.Index != 2 {
					t.Errorf("DiffLayer(%d).Layer.Index = %d, want 2", n, d.Layer.Index)
				}
			}
		})
	}
}

func TestDiffLayerNumbers(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	im := build(t, s, nil, "img", runStep("a", file("a", "1")), runStep("b", file("b", "2")), runStep("c", file("c", "3")))
	for n, want := range map[int]string{1: "/a", 2: "/b", 3: "/c", 0: "/c", -1: "/c", -2: "/b", -3: "/a"} {
		d, err := im.DiffLayer(context.Background(), n)
		if err != nil {
			t.Fatalf("DiffLayer(%d) = %v", n, err)
		}
		if len(d.Changes) != 1 || d.Changes[0].Path != want || d.Changes[0].Kind != Added {
			t.Errorf("DiffLayer(%d) = %v, want A %s", n, lines(d.Changes), want)
		}
	}
	for _, n := range []int{4, -4} {
		if _, err := im.DiffLayer(context.Background(), n); err == nil {
			t.Errorf("DiffLayer(%d) of 3 layers succeeded", n)
		}
	}
}

func TestDiffImages(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	base := busybox(t, s, "base")
	app := func(name, config string, extra ...tf) *Image {
		return build(t, s, base, name,
			step{createdBy: "COPY . /app # buildkit", layer: append([]tf{
				dir("app", 0o755), file("app/main.go", "package main"), file("app/app.conf", config),
			}, extra...)},
			runStep("rm /bin/sh", dir("bin", 0o755), whiteout("bin", "sh")),
		)
	}
	a := app("a", "debug=0")
	b := app("b", "debug=1")
	got, err := DiffImages(context.Background(), a, b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]line{{Changed, "/app/app.conf", 7, "content"}}, lines(got)); diff != "" {
		t.Errorf("DiffImages(a, b) mismatch (-want +got):\n%s", diff)
	}
	if got[0].Before.Digest == got[0].After.Digest || got[0].Before.Digest == "" {
		t.Errorf("DiffImages(a, b) digests %q → %q, want two different ones", got[0].Before.Digest, got[0].After.Digest)
	}

	c := app("c", "debug=0", dir("app/lib", 0o755), file("app/lib/x.so", "elf"))
	got, err = DiffImages(context.Background(), c, base)
	if err != nil {
		t.Fatal(err)
	}
	want := []line{{Deleted, "/app", 22, ""}, {Added, "/bin/sh", 0, ""}}
	if diff := cmp.Diff(want, lines(got)); diff != "" {
		t.Errorf("DiffImages(c, base) mismatch (-want +got):\n%s", diff)
	}
	got, err = DiffImages(context.Background(), a, c)
	if err != nil {
		t.Fatal(err)
	}
	want = []line{{Added, "/app/lib", 0, ""}, {Added, "/app/lib/x.so", 3, ""}}
	if diff := cmp.Diff(want, lines(got)); diff != "" {
		t.Errorf("DiffImages(a, c) mismatch (-want +got):\n%s", diff)
	}
}
