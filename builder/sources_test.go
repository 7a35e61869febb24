package builder

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	bt "minibuild/builder/buildertest"
)

func newContext(t *testing.T, ignore string, entries ...bt.Entry) Tree {
	t.Helper()
	dir := t.TempDir()
	bt.Create(t, dir, entries...)
	if ignore != "" {
		if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte(ignore), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tree, err := LoadContext(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

type srcResult struct {
	Name, Path string
	Dir        bool
}

func resolveAll(t *testing.T, tree Tree, sources ...string) ([]srcResult, error) {
	t.Helper()
	srcs, err := Sources(tree, &CopyOp{Sources: sources})
	var out []srcResult
	for _, s := range srcs {
		out = append(out, srcResult{s.Name, s.Path, s.Dir})
	}
	return out, err
}

func TestSources(t *testing.T) {
	t.Parallel()
	ctx := newContext(t, "", bt.File("foo.go", "", 0o644), bt.File("bar.go", "", 0o644), bt.File("f2.txt", "", 0o644),
		bt.Dir("sub/dir1/dir2", 0o755), bt.File("sub/dir1/dir2/foo", "", 0o644),
		bt.Symlink("link", "sub"), bt.Symlink("sub/up", "../foo.go"), bt.Symlink("abs", "/etc"),
		bt.Symlink("escape", "../../outside"), bt.File("arr[0].txt", "", 0o644))
	tests := []struct {
		name    string
		sources []string
		want    []srcResult
		wantErr error
	}{
		{"file", []string{"foo.go"}, []srcResult{{"foo.go", "foo.go", false}}, nil},
		{"root", []string{"."}, []srcResult{{"", "", true}}, nil},
		{"leading slash is the context root", []string{"/sub/dir1/"}, []srcResult{{"sub/dir1", "sub/dir1", true}}, nil},
		{"dot suffix", []string{"sub/dir1/."}, []srcResult{{"sub/dir1", "sub/dir1", true}}, nil},
		{"glob, lexical order", []string{"*.go"}, []srcResult{{"bar.go", "bar.go", false}, {"foo.go", "foo.go", false}}, nil},
		{"glob in the middle", []string{"sub/*/dir2/foo"}, []srcResult{{"sub/dir1/dir2/foo", "sub/dir1/dir2/foo", false}}, nil},
		{"glob escapes", []string{"arr[[]0].txt"}, []srcResult{{"arr[0].txt", "arr[0].txt", false}}, nil},
		{"empty glob next to a match", []string{"foo.go", "nomatch*"}, []srcResult{{"foo.go", "foo.go", false}}, nil},
		{"symlink in the path", []string{"link/dir1"}, []srcResult{{"link/dir1", "sub/dir1", true}}, nil},
		{"symlink followed at the end", []string{"sub/up"}, []srcResult{{"sub/up", "foo.go", false}}, nil},
		{"glob does not enter symlinked dirs", []string{"*/dir1"}, []srcResult{{"sub/dir1", "sub/dir1", true}}, nil},
		{"only empty globs", []string{"nomatch*"}, nil, ErrNoSources},
		{"missing", []string{"nothere"}, nil, ErrNotFound},
		{"missing below a glob", []string{"none/*.go"}, nil, ErrNotFound},
		{"dotdot", []string{"../secret"}, nil, ErrUnsafePath},
		{"dotdot after a dir", []string{"sub/../../secret"}, nil, ErrUnsafePath},
		{"absolute symlink", []string{"abs/passwd"}, nil, ErrUnsafePath},
		{"relative symlink out", []string{"escape"}, nil, ErrUnsafePath},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := resolveAll(t, ctx, tc.sources...)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Sources(%q) = %v, want %v", tc.sources, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Sources(%q) = %v", tc.sources, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Sources(%q) (-want +got):\n%s", tc.sources, diff)
			}
		})
	}
}

func TestSourcesAbsoluteSymlinkIntoContext(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bt.Create(t, dir, bt.File("real/f", "x", 0o644), bt.Symlink("abs", filepath.Join(dir, "real")))
	tree, err := LoadContext(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := resolveAll(t, tree, "abs/f")
	if err != nil || len(got) != 1 || got[0].Path != "real/f" {
		t.Errorf("Sources(abs/f) = %v, %v; want real/f (an absolute link into the context is fine)", got, err)
	}
}

func TestSourcesRootTree(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bt.Create(t, dir, bt.Dir("out/sub", 0o755), bt.File("out/sub/foo", "data", 0o644),
		bt.Symlink("sub", "/out/sub"), bt.Symlink("sub2", "out/sub"), bt.Symlink("loop", "loop"))
	tree := Tree{Dir: dir, Kind: RootTree}
	// testCopyThroughSymlinkMultiStage: absolute links resolve in the root.
	got, err := resolveAll(t, tree, "/sub/foo", "sub2/foo", "../../out/sub/foo")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range got {
		if s.Path != "out/sub/foo" {
			t.Errorf("resolved %s to %s, want out/sub/foo", s.Name, s.Path)
		}
	}
	if _, err := resolveAll(t, tree, "loop"); err == nil || !strings.Contains(err.Error(), "too many levels") {
		t.Errorf("Sources(loop) = %v, want a symlink loop error", err)
	}
}

// TestSourcesDockerignore follows BuildKit's testDockerignore and
// validateCopySourcePath: ignored files do not exist for COPY.
func TestSourcesDockerignore(t *testing.T) {
	t.Parallel()
	entries := []bt.Entry{
		bt.File("foo", "", 0o644), bt.File("bar", "", 0o644), bt.File("baz", "", 0o644), bt.File("bay", "", 0o644),
		bt.File("Dockerfile", "", 0o644), bt.File("logs/a.log", "", 0o644), bt.File("logs/keep.log", "", 0o644),
		bt.File("node_modules/x/y", "", 0o644),
	}
	ctx := newContext(t, "ba*\nDockerfile\n!bay\n.dockerignore\nlogs\n!logs/keep.log\nnode_modules\n", entries...)
	got, err := resolveAll(t, ctx, "b*", "logs", "foo")
	if err != nil {
		t.Fatal(err)
	}
	want := []srcResult{{"bay", "bay", false}, {"logs", "logs", true}, {"foo", "foo", false}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Sources (-want +got):\n%s", diff)
	}
	for _, hidden := range []string{"bar", "Dockerfile", ".dockerignore", "logs/a.log", "node_modules/x/y", "node_modules"} {
		_, err := resolveAll(t, ctx, hidden)
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "excluded by .dockerignore") {
			t.Errorf("Sources(%s) = %v, want not found or excluded", hidden, err)
		}
	}
	all := newContext(t, "*\n", entries...)
	if _, err := resolveAll(t, all, "."); !errors.Is(err, ErrNoSources) {
		t.Errorf("COPY . with everything ignored = %v, want ErrNoSources", err)
	}
	if _, err := LoadContext(newContext(t, "").Dir, ""); err != nil {
		t.Fatal(err)
	}
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, ".dockerignore"), []byte("!\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadContext(bad, ""); err == nil {
		t.Error("LoadContext with an invalid .dockerignore (testDockerignoreInvalid) succeeded")
	}
}

func TestSourcesParents(t *testing.T) {
	t.Parallel()
	ctx := newContext(t, "", bt.File("x/a.txt", "", 0o644), bt.File("y/a.txt", "", 0o644), bt.File("x/y/b.txt", "", 0o644))
	srcs, err := Sources(ctx, &CopyOp{Sources: []string{"./x/a.txt", "x/./y/*.txt"}, Parents: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []Source{{Name: "", Path: "", Dir: true, Include: "x/a.txt", Arg: 0}, {Name: "x", Path: "x", Dir: true, Include: "y/*.txt", Arg: 1}}
	if diff := cmp.Diff(want, srcs); diff != "" {
		t.Errorf("Sources --parents (-want +got):\n%s", diff)
	}
	if _, err := Sources(ctx, &CopyOp{Sources: []string{"x/missing.txt"}, Parents: true}); !errors.Is(err, ErrNotFound) {
		t.Errorf("--parents with a missing literal path = %v, want ErrNotFound (testCopyParentsMissingDirectory)", err)
	}
}

func TestSourcesEmptyRoots(t *testing.T) {
	t.Parallel()
	// An empty stage root or context is still a source (BuildKit copies
	// nothing and creates the destination); only .dockerignore hiding
	// everything, or globs matching nothing, select nothing.
	for _, tree := range []Tree{{Dir: t.TempDir(), Kind: RootTree}, newContext(t, "")} {
		if _, err := Sources(tree, &CopyOp{Sources: []string{"/"}}); err != nil {
			t.Errorf("Sources(/) of an empty %v tree = %v", tree.Kind, err)
		}
	}
	_, err := Sources(newContext(t, "*\n", bt.File("a", "", 0o644)), &CopyOp{Sources: []string{"."}})
	if err == nil || err.Error() != `no source files were specified: nothing . selects is left by .dockerignore` {
		t.Errorf("Sources(.) with everything ignored = %v", err)
	}
}
