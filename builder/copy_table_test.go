package builder

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	bt "minibuild/builder/buildertest"
	"minibuild/internal/testenv"
)

// copyCase is one row of the COPY/ADD semantics table: a build context,
// image filesystems the Dockerfile can start from, and the complete tree
// the target stage must end with (or the error it must fail with).
type copyCase struct {
	name string
	// from names the BuildKit Dockerfile frontend test the case is ported
	// from (frontend/dockerfile/*_test.go), or the rule it checks.
	from       string
	context    []bt.Entry
	images     map[string][]bt.Entry // FROM / COPY --from image filesystems
	dockerfile string                // {{URL}} is a local HTTP server
	args       map[string]string
	want       []bt.Entry
	wantErr    string // substring of the error; want is then unused
	wantLine   int    // the Dockerfile line the error must name
	// buildah records how the case compares with buildah 1.28 (Debian 12):
	// "same" when the tree matched, else the known divergence. BuildKit
	// is the reference where they differ.
	buildah string
}

func TestCopySemantics(t *testing.T) {
	testenv.RequirePrivileged(t) // owners and modes need root
	t.Parallel()
	srv := newTestServer(t)
	for _, tc := range copyCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			df := strings.ReplaceAll(tc.dockerfile, "{{URL}}", srv)
			got, err := runCopyCase(t, tc, df)
			if tc.wantErr != "" {
				checkCopyError(t, tc, err)
				return
			}
			if err != nil {
				t.Fatalf("build (%s): %v", tc.from, err)
			}
			if diff := cmp.Diff(bt.Format(expected(tc.want, df)), bt.Format(got)); diff != "" {
				t.Errorf("tree after %s (-want +got):\n%s", tc.from, diff)
			}
		})
	}
}

// expected sorts a case's tree like Read does and fills in the
// Dockerfile's content where an entry says {{DOCKERFILE}}.
func expected(want []bt.Entry, dockerfile string) []bt.Entry {
	out := slices.Clone(want)
	for i := range out {
		if out[i].Data == "{{DOCKERFILE}}" {
			out[i].Data = dockerfile
		}
	}
	slices.SortFunc(out, func(a, b bt.Entry) int { return strings.Compare(a.Path, b.Path) })
	return out
}

func checkCopyError(t *testing.T, tc copyCase, err error) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
		t.Fatalf("build (%s) = %v, want an error containing %q", tc.from, err, tc.wantErr)
	}
	de, ok := errors.AsType[*DockerfileError](err)
	if !ok {
		t.Fatalf("build error %T, want *DockerfileError", err)
	}
	if tc.wantLine != 0 && de.Location.Start != tc.wantLine {
		t.Errorf("error at line %d, want %d: %v", de.Location.Start, tc.wantLine, err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error spans lines: %q", err)
	}
}

// runCopyCase plans the Dockerfile and performs its filesystem steps the
// way the step loop will: each stage in a directory of its own, started
// from its base's tree, COPY/ADD through Copy, WORKDIR through Mkdir.
func runCopyCase(t *testing.T, tc copyCase, df string) ([]bt.Entry, error) {
	t.Helper()
	ctx := context.Background()
	ctxDir := t.TempDir()
	bt.Create(t, ctxDir, append([]bt.Entry{bt.File("Dockerfile", df, 0o600)}, tc.context...)...)
	images := fakeImages{}
	imageRoots := map[string]string{}
	for name, entries := range tc.images {
		dir := t.TempDir()
		bt.Create(t, dir, entries...)
		imageRoots[name] = dir
		images[name] = testImage("docker.io/library/"+name+":latest", v1.Config{})
	}
	p, err := Parse(ctx, Request{Context: ctxDir, BuildArgs: tc.args, Platform: "linux/amd64"}, images)
	if err != nil {
		return nil, err
	}
	roots := map[*Stage]string{}
	for _, s := range p.Order {
		root := filepath.Join(t.TempDir(), "root")
		if err := os.Mkdir(root, 0o755); err != nil {
			t.Fatal(err)
		}
		switch s.From.Kind {
		case FromImage:
			copyDir(t, imageRoots[s.From.Ref], root)
		case FromStage:
			copyDir(t, roots[s.From.Stage], root)
		}
		roots[s] = root
		for _, step := range s.Steps {
			if err := runFSStep(t, p, step, root, roots, imageRoots); err != nil {
				return nil, p.Error(step, err)
			}
		}
	}
	return bt.Read(t, roots[p.Target]), nil
}

func runFSStep(t *testing.T, p *Plan, step *Step, root string, roots map[*Stage]string, imageRoots map[string]string) error {
	ctx := context.Background()
	switch {
	case step.Workdir != nil:
		return Mkdir(ctx, root, step.Workdir, nil)
	case step.Run != nil:
		t.Fatalf("copy cases do not RUN (%s)", step.Original)
	case step.Copy != nil:
		op := step.Copy
		req := CopyRequest{Op: op, Src: p.Context}
		switch op.From.Kind {
		case FromStageResult:
			req.Src = Tree{Dir: roots[op.From.Stage], Kind: RootTree}
		case FromImageRoot:
			req.Src = Tree{Dir: imageRoots[op.From.Ref], Kind: RootTree}
		case FromNamedDir:
			tree, err := LoadContext(op.From.Dir, "")
			if err != nil {
				return err
			}
			req.Src = tree
		}
		for _, src := range op.Sources {
			if op.Add && isURL(src) {
				f, err := Fetch(ctx, nil, src, op.Checksum, t.TempDir())
				if err != nil {
					return err
				}
				req.Fetched = append(req.Fetched, f)
			}
		}
		return Copy(ctx, root, req)
	}
	return nil
}

// copyDir copies a tree with owners, modes and links (the snapshot a
// stage starts from).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := osexec.Command("cp", "-a", src+"/.", dst+"/").CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v: %s", err, out)
	}
}

// newTestServer serves the URL sources of the cases on 127.0.0.1.
func newTestServer(t *testing.T) string {
	t.Helper()
	modTime := time.Date(2021, 5, 6, 7, 8, 9, 0, time.UTC)
	tarGz := gzipBytes(t, tarBytes(t, tarFile("foo", "content0", 0o644)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Last-Modified", modTime.Format(http.TimeFormat))
		switch r.URL.Path {
		case "/foo":
			w.Write([]byte("content1"))
		case "/t.tar.gz":
			w.Write(tarGz)
		case "/":
			w.Write([]byte("root"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// tarEntry is a tar header plus content, for building archives.
type tarEntry struct {
	hdr  tar.Header
	data string
}

func tarFile(name, data string, mode int64) tarEntry {
	return tarEntry{tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(data))}, data}
}

func tarDir(name string, mode int64) tarEntry {
	return tarEntry{tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: mode}, ""}
}

func tarBytes(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if h.ModTime.IsZero() {
			h.ModTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// compressWith runs an external compressor (bzip2, xz, zstd) over b.
func compressWith(t *testing.T, tool string, b []byte) []byte {
	t.Helper()
	testenv.RequireTool(t, tool)
	cmd := osexec.Command(tool, "-c", "-q")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return out
}
