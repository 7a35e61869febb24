package cache_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"minibuild/cache"
)

// listing is a small context listing with every kind of entry.
func listing() []cache.File {
	return []cache.File{
		{Path: "bin", Type: cache.TypeDir, Mode: 0o755},
		{Path: "bin/run", Type: cache.TypeFile, Mode: 0o755, Size: 5, Digest: hash("11")},
		{Path: "dev", Type: cache.TypeDir, Mode: 0o755},
		{Path: "dev/null", Type: cache.TypeChar, Mode: 0o666, Rdev: 259},
		{Path: "fifo", Type: cache.TypeFifo, Mode: 0o644},
		{Path: "link", Type: cache.TypeSymlink, Mode: 0o777, Linkname: "bin/run"},
		{Path: "src", Type: cache.TypeDir, Mode: 0o755},
		{Path: "src/main.go", Type: cache.TypeFile, Mode: 0o644, Size: 12, Digest: hash("22"),
			Xattrs: map[string]string{"user.a": "1"}},
		{Path: "src/util.go", Type: cache.TypeFile, Mode: 0o644, Size: 30, Digest: hash("33")},
	}
}

func TestDigestChanges(t *testing.T) {
	t.Parallel()
	at := func(files []cache.File, p string) *cache.File {
		for i := range files {
			if files[i].Path == p {
				return &files[i]
			}
		}
		panic(p)
	}
	mutations := []struct {
		name   string
		mutate func([]cache.File) []cache.File
	}{
		{"content, same size", func(f []cache.File) []cache.File { at(f, "src/main.go").Digest = hash("23"); return f }},
		{"size", func(f []cache.File) []cache.File { at(f, "src/main.go").Size = 13; return f }},
		{"mode", func(f []cache.File) []cache.File { at(f, "src/main.go").Mode = 0o600; return f }},
		{"setuid bit", func(f []cache.File) []cache.File { at(f, "bin/run").Mode = 0o4755; return f }},
		{"dir mode", func(f []cache.File) []cache.File { at(f, "src").Mode = 0o700; return f }},
		{"type", func(f []cache.File) []cache.File { at(f, "fifo").Type = cache.TypeFile; return f }},
		{"symlink target", func(f []cache.File) []cache.File { at(f, "link").Linkname = "bin/run2"; return f }},
		{"device number", func(f []cache.File) []cache.File { at(f, "dev/null").Rdev = 260; return f }},
		{"xattr value", func(f []cache.File) []cache.File { at(f, "src/main.go").Xattrs["user.a"] = "2"; return f }},
		{"xattr added", func(f []cache.File) []cache.File {
			at(f, "src/util.go").Xattrs = map[string]string{"user.b": ""}
			return f
		}},
		{"added", func(f []cache.File) []cache.File {
			return append(f, cache.File{Path: "src/new.go", Type: cache.TypeFile, Mode: 0o644, Digest: hash("44")})
		}},
		{"added empty dir", func(f []cache.File) []cache.File {
			return append(f, cache.File{Path: "empty", Type: cache.TypeDir, Mode: 0o755})
		}},
		{"removed", func(f []cache.File) []cache.File { return f[:len(f)-1] }},
		{"renamed", func(f []cache.File) []cache.File { at(f, "src/util.go").Path = "src/util2.go"; return f }},
	}
	base := cache.Digest(listing())
	seen := map[v1.Hash]string{base: "base"}
	for _, m := range mutations {
		d := cache.Digest(m.mutate(listing()))
		if d == base {
			t.Errorf("%s: Digest unchanged", m.name)
		}
		if other, dup := seen[d]; dup {
			t.Errorf("%s: Digest equals that of %s", m.name, other)
		}
		seen[d] = m.name
	}
	// Order of the input and the xattr map's order do not matter.
	rev := listing()
	slices.Reverse(rev)
	if got := cache.Digest(rev); got != base {
		t.Errorf("Digest depends on input order")
	}
	// Length framing: moving bytes between adjacent fields changes it.
	a := []cache.File{{Path: "ab", Type: cache.TypeSymlink, Linkname: "c"}}
	b := []cache.File{{Path: "a", Type: cache.TypeSymlink, Linkname: "bc"}}
	if cache.Digest(a) == cache.Digest(b) {
		t.Errorf("Digest is not length-framed")
	}
	if cache.Digest(nil) == cache.Digest([]cache.File{{Path: "", Type: cache.TypeDir}}) {
		t.Errorf("empty listing digest equals a one-entry listing")
	}
}

func TestSubtrees(t *testing.T) {
	t.Parallel()
	files := []cache.File{{Path: "a"}, {Path: "a.txt"}, {Path: "a/b"}, {Path: "a/b/c"}, {Path: "ab"}, {Path: "b"}, {Path: "b/x"}}
	tests := []struct {
		roots []string
		want  []string
	}{
		{[]string{"a"}, []string{"a", "a/b", "a/b/c"}},
		{[]string{"a/"}, []string{"a", "a/b", "a/b/c"}},
		{[]string{"./a/b"}, []string{"a/b", "a/b/c"}},
		{[]string{"a.txt"}, []string{"a.txt"}},
		{[]string{"b", "a"}, []string{"a", "a/b", "a/b/c", "b", "b/x"}},
		{[]string{"a", "a/b"}, []string{"a", "a/b", "a/b/c"}},
		{[]string{"."}, []string{"a", "a.txt", "a/b", "a/b/c", "ab", "b", "b/x"}},
		{[]string{"missing"}, nil},
	}
	for _, tt := range tests {
		var got []string
		for _, f := range cache.Subtrees(files, tt.roots...) {
			got = append(got, f.Path)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Subtrees(%q) mismatch (-want +got):\n%s", tt.roots, diff)
		}
	}
}

func TestDiffFiles(t *testing.T) {
	t.Parallel()
	file := func(p, d string, size int64) cache.File {
		return cache.File{Path: p, Type: cache.TypeFile, Mode: 0o644, Size: size, Digest: hash(d)}
	}
	tests := []struct {
		name     string
		old, cur []cache.File
		want     []string
	}{
		{"same", []cache.File{file("a", "01", 1)}, []cache.File{file("a", "01", 1)}, nil},
		{"content", []cache.File{file("a", "01", 1)}, []cache.File{file("a", "02", 1)}, []string{"a (content)"}},
		{"added and removed", []cache.File{file("a", "01", 1)}, []cache.File{file("b", "02", 1)},
			[]string{"a (removed)", "b (added)"}},
		{"renamed", []cache.File{file("a", "01", 1), file("z", "09", 1)}, []cache.File{file("b", "01", 1), file("z", "09", 1)},
			[]string{"a → b (renamed)"}},
		{"renamed with new mode", []cache.File{file("a", "01", 1)},
			[]cache.File{{Path: "b", Type: cache.TypeFile, Mode: 0o755, Size: 1, Digest: hash("01")}},
			[]string{"a → b (renamed, mode)"}},
		{"ambiguous rename", []cache.File{file("a", "01", 1), file("b", "01", 1)}, []cache.File{file("c", "01", 1)},
			[]string{"a (removed)", "b (removed)", "c (added)"}},
		{"empty files are not renames", []cache.File{file("a", "01", 0)}, []cache.File{file("b", "01", 0)},
			[]string{"a (removed)", "b (added)"}},
		{"mode", []cache.File{file("a", "01", 1)}, []cache.File{{Path: "a", Type: cache.TypeFile, Mode: 0o600, Size: 1, Digest: hash("01")}},
			[]string{"a (mode)"}},
		{"type", []cache.File{file("a", "01", 1)}, []cache.File{{Path: "a", Type: cache.TypeSymlink, Mode: 0o777, Linkname: "x"}},
			[]string{"a (type)"}},
		{"symlink target", []cache.File{{Path: "l", Type: cache.TypeSymlink, Linkname: "x"}},
			[]cache.File{{Path: "l", Type: cache.TypeSymlink, Linkname: "y"}}, []string{"l (symlink target)"}},
		{"xattrs", []cache.File{file("a", "01", 1)},
			[]cache.File{{Path: "a", Type: cache.TypeFile, Mode: 0o644, Size: 1, Digest: hash("01"), Xattrs: map[string]string{"user.x": "1"}}},
			[]string{"a (xattrs)"}},
		{"content and mode", []cache.File{file("a", "01", 1)},
			[]cache.File{{Path: "a", Type: cache.TypeFile, Mode: 0o600, Size: 2, Digest: hash("02")}}, []string{"a (content, mode)"}},
		{"device", []cache.File{{Path: "d", Type: cache.TypeChar, Rdev: 1}}, []cache.File{{Path: "d", Type: cache.TypeChar, Rdev: 2}},
			[]string{"d (device)"}},
	}
	for _, tt := range tests {
		var got []string
		for _, c := range cache.DiffFiles(tt.old, tt.cur) {
			got = append(got, c.String())
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: DiffFiles mismatch (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestWriteListing(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := cache.WriteListing(&buf, listing()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != len(listing()) {
		t.Fatalf("WriteListing wrote %d lines, want %d", len(lines), len(listing()))
	}
	want := map[int]string{
		3: `char 0666 0 - "dev/null" rdev=259`,
		5: `symlink 0777 0 - "link" -> "bin/run"`,
		7: fmt.Sprintf(`file 0644 12 %s "src/main.go" user.a="1"`, hash("22")),
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("line %d = %q, want %q", i, lines[i], w)
		}
	}
}
