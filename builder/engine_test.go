package builder

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"minibuild/layer"
)

// layerPaths lists a layer blob's entries ("path" or ".wh.name" paths as
// stored, whiteouts decoded into "path (whiteout)").
func (e *engine) layerPaths(d v1.Descriptor) []string {
	e.t.Helper()
	rc, err := e.store.OpenBlob(d.Digest)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rc.Close()
	var out []string
	err = layer.Entries(context.Background(), rc, func(en layer.Entry, _ io.Reader) error {
		switch {
		case en.Whiteout:
			out = append(out, en.Path+" (whiteout)")
		case en.Type == tar.TypeDir:
			out = append(out, en.Path+"/")
		default:
			out = append(out, en.Path)
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func TestBuildSeedLayers(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	e.busybox()
	res := e.mustBuild(copyTree(t, corpus("01-seed-layers")), "", Request{Tags: []string{"seed"}})
	cfg, m := e.image(res.Manifest.Digest)
	if len(m.Layers) != 7 || len(cfg.RootFS.DiffIDs) != 7 {
		t.Fatalf("image has %d layers (%d diff IDs), want 7: busybox + 6 RUN", len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	wantLast := []string{"data/", "data/one (whiteout)"}
	if got := e.layerPaths(m.Layers[6]); !equal(got, wantLast) {
		t.Errorf("rm layer = %q, want %q", got, wantLast)
	}
	if got := e.layerPaths(m.Layers[3]); !equal(got, []string{"data/", "data/one"}) {
		t.Errorf("first chmod layer = %q, want the copied-up data/one", got)
	}
	if got := e.layerPaths(m.Layers[5]); !equal(got, []string{"data/", "data/one", "data/two"}) {
		t.Errorf("second chmod layer = %q, want both copied-up files", got)
	}
	var empty int
	for _, h := range cfg.History {
		if h.EmptyLayer {
			empty++
		}
	}
	if got := len(cfg.History) - empty; got != 7 {
		t.Errorf("history has %d non-empty entries, want 7", got)
	}
	if cmd := strings.Join(cfg.Config.Cmd, " "); cmd != "/bin/sh -c ls -alh /data" {
		t.Errorf("Cmd = %q", cmd)
	}
	e.fsck()
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBuildCorpus(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"03-multistage", "06-metadata"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEngine(t)
			e.busybox()
			res := e.mustBuild(copyTree(t, corpus(name)), "", Request{Tags: []string{"corpus:" + name}})
			cfg, m := e.image(res.Manifest.Digest)
			if len(m.Layers) != len(cfg.RootFS.DiffIDs) {
				t.Errorf("%d layers, %d diff IDs", len(m.Layers), len(cfg.RootFS.DiffIDs))
			}
			if m.Annotations["org.opencontainers.image.base.name"] != "docker.io/library/busybox:latest" {
				t.Errorf("base annotations = %v", m.Annotations)
			}
			e.fsck()
		})
	}
}

func TestMetadataImage(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	e.busybox()
	res := e.mustBuild(copyTree(t, corpus("06-metadata")), "", Request{})
	cfg, _ := e.image(res.Manifest.Digest)
	c := cfg.Config
	if c.User != "app" || c.WorkingDir != "/opt/app/data" || strings.Join(c.Entrypoint, " ") != "/opt/app/bin/run.sh" || strings.Join(c.Cmd, " ") != "--help" {
		t.Errorf("config = user %q workdir %q entrypoint %q cmd %q", c.User, c.WorkingDir, c.Entrypoint, c.Cmd)
	}
	if c.Labels["org.opencontainers.image.version"] != "1.2.3" {
		t.Errorf("labels = %v", c.Labels)
	}
	var out strings.Builder
	err := e.b.Run(context.Background(), RunRequest{Image: res.Manifest.Digest.String(), Args: []string{"hello"}, Stdout: &out, Stderr: &out})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	if want := "app 1.2.3 as app in /opt/app/data: hello\n"; out.String() != want {
		t.Errorf("run output = %q, want %q", out.String(), want)
	}
}

// TestReproducible builds the same projects into two fresh stores, from
// two copies of the context with different mtimes: same image digest.
func TestReproducible(t *testing.T) {
	t.Parallel()
	var digests [2]string
	for i := range digests {
		e := newEngine(t)
		e.busybox()
		dir := copyTree(t, corpus("06-metadata"))
		stamp := time.Date(2001+10*i, 1, 1, 0, 0, 0, 0, time.UTC)
		if err := os.Chtimes(filepath.Join(dir, "run.sh"), stamp, stamp); err != nil {
			t.Fatal(err)
		}
		res := e.mustBuild(dir, "", Request{})
		seed := e.mustBuild(copyTree(t, corpus("01-seed-layers")), "", Request{})
		digests[i] = res.Manifest.Digest.String() + " " + seed.Manifest.Digest.String()
	}
	if digests[0] != digests[1] {
		t.Errorf("digests differ between two stores: %s vs %s", digests[0], digests[1])
	}
}

const smallProject = `FROM busybox
WORKDIR /app
COPY conf/ ./conf/
RUN cat conf/a > /app/joined && echo built >> /app/joined
COPY VERSION /app/VERSION
CMD ["cat", "/app/joined"]
`

func smallContext(t *testing.T) string {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "conf/a"), "a\n")
	writeFile(t, filepath.Join(dir, "VERSION"), "1.0\n")
	return dir
}

// TestNoOpRebuild checks that a rebuild of an unchanged project takes
// every step from the cache and does no work: no mount, no process, no
// diff, no unpack, no blob written, the tag confirmed.
func TestNoOpRebuild(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	e.busybox()
	dir := smallContext(t)
	first := e.mustBuild(dir, smallProject, Request{Tags: []string{"app"}})
	blobs := listDir(t, filepath.Join(e.root, "oci/blobs/sha256"))
	index, err := os.Stat(filepath.Join(e.root, "oci/index.json"))
	if err != nil {
		t.Fatal(err)
	}
	e.resetCounts()
	second := e.mustBuild(dir, "", Request{Tags: []string{"app"}})
	if second.Manifest.Digest != first.Manifest.Digest {
		t.Errorf("rebuild digest %s, want %s", second.Manifest.Digest, first.Manifest.Digest)
	}
	for _, s := range second.Steps {
		if !s.Cached {
			t.Errorf("step %q missed: %v", s.Name, s.Reason)
		}
	}
	if c := e.resetCounts(); len(c) != 0 {
		t.Errorf("no-op build did work: %v", c)
	}
	if got := listDir(t, filepath.Join(e.root, "oci/blobs/sha256")); !equal(got, blobs) {
		t.Errorf("no-op build changed the blobs: %d → %d", len(blobs), len(got))
	}
	if after, err := os.Stat(filepath.Join(e.root, "oci/index.json")); err != nil || !after.ModTime().Equal(index.ModTime()) {
		t.Errorf("no-op build rewrote index.json")
	}
	if len(second.Tags) != 1 || second.Tags[0] != "docker.io/library/app:latest" {
		t.Errorf("tags = %v", second.Tags)
	}
}

// TestEditLastCopy edits the file only the last COPY reads: that step
// alone misses, and its reason names the file.
func TestEditLastCopy(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	e.busybox()
	dir := smallContext(t)
	e.mustBuild(dir, smallProject, Request{})
	writeFile(t, filepath.Join(dir, "VERSION"), "1.1\n")
	res := e.mustBuild(dir, "", Request{})
	var missed []string
	for _, s := range res.Steps {
		if !s.Cached {
			missed = append(missed, s.Name)
			if got := s.Reason.String(); got != "input changed: VERSION (content)" {
				t.Errorf("reason = %q, want the file named", got)
			}
		}
	}
	if !equal(missed, []string{"[5/5] COPY VERSION /app/VERSION"}) {
		t.Errorf("missed steps = %q, want only the last COPY", missed)
	}
}

// TestEmptyDiff checks that a step that changes nothing makes no layer
// and an empty_layer history entry, like BuildKit.
func TestEmptyDiff(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	e.busybox()
	df := "FROM busybox\nRUN true\nWORKDIR /tmp\nRUN <<EOF\n#!/bin/sh\necho from a script > /script.out\nEOF\n"
	res := e.mustBuild(t.TempDir(), df, Request{})
	cfg, m := e.image(res.Manifest.Digest)
	if len(m.Layers) != 2 {
		t.Fatalf("%d layers, want busybox + the heredoc RUN", len(m.Layers))
	}
	if got := e.layerPaths(m.Layers[1]); !equal(got, []string{"script.out"}) {
		t.Errorf("heredoc layer = %q, want only its output (no script dir)", got)
	}
	var emptyRun, emptyWorkdir bool
	for _, h := range cfg.History {
		emptyRun = emptyRun || (h.CreatedBy == "RUN /bin/sh -c true # buildkit" && h.EmptyLayer)
		emptyWorkdir = emptyWorkdir || (h.CreatedBy == "WORKDIR /tmp" && h.EmptyLayer)
	}
	if !emptyRun || !emptyWorkdir {
		t.Errorf("history = %+v, want RUN true and WORKDIR /tmp as empty layers", cfg.History)
	}
}

func TestOutputs(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	e.busybox()
	out := t.TempDir()
	dir := smallContext(t)
	req := Request{Tags: []string{"app"}, Outputs: []Output{
		{Type: "oci", Dest: filepath.Join(out, "app.tar")},
		{Type: "docker", Dest: filepath.Join(out, "docker.tar")},
		{Type: "local", Dest: filepath.Join(out, "rootfs")},
	}}
	e.mustBuild(dir, smallProject, req)
	b, err := os.ReadFile(filepath.Join(out, "rootfs/app/joined"))
	if err != nil || string(b) != "a\nbuilt\n" {
		t.Errorf("local output /app/joined = %q, %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(out, "rootfs/bin/sh")); err != nil {
		t.Errorf("local output lacks the base's files: %v", err)
	}
	for _, f := range []string{"app.tar", "docker.tar"} {
		fi, err := os.Stat(filepath.Join(out, f))
		if err != nil || fi.Size() == 0 {
			t.Errorf("archive %s: %v", f, err)
		}
	}
	if got := listDir(t, out); !equal(got, []string{"app.tar", "docker.tar", "rootfs"}) {
		t.Errorf("output dir = %q, want no temp files left", got)
	}
}

// TestBuildContexts builds FROM a --build-context directory and FROM an
// OCI layout (another store's), and copies from both.
func TestBuildContextBases(t *testing.T) {
	t.Parallel()
	src := newEngine(t)
	src.busybox()
	rootfs := t.TempDir()
	writeFile(t, filepath.Join(rootfs, "etc/hello"), "hello\n")
	writeFile(t, filepath.Join(rootfs, "skip.me"), "x")
	writeFile(t, filepath.Join(rootfs, ".dockerignore"), "skip.me\n")

	e := newEngine(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f"), "f\n")
	req := Request{BuildContexts: map[string]string{
		"base": rootfs,
		"bb":   "oci-layout://" + filepath.Join(src.root, "oci") + ":latest",
	}}
	df := "FROM base\nCOPY f /f\nCOPY --from=bb /bin/busybox /busybox\n"
	res := e.mustBuild(dir, df, req)
	cfg, m := e.image(res.Manifest.Digest)
	if len(m.Layers) != 3 {
		t.Fatalf("%d layers, want the directory's, f, busybox", len(m.Layers))
	}
	if got := e.layerPaths(m.Layers[0]); !equal(got, []string{".dockerignore", "etc/", "etc/hello"}) {
		t.Errorf("directory layer = %q", got)
	}
	if len(cfg.History) != 3 || cfg.History[0].CreatedBy != "FROM base" {
		t.Errorf("history = %+v", cfg.History)
	}
	again := e.mustBuild(dir, "", req)
	for _, s := range again.Steps {
		if !s.Cached {
			t.Errorf("rebuild: %s missed: %v", s.Name, s.Reason)
		}
	}
	writeFile(t, filepath.Join(rootfs, "etc/hello"), "changed\n")
	third := e.mustBuild(dir, "", req)
	if third.Steps[0].Cached || third.Steps[0].Reason.String() != "input changed: etc/hello (content)" {
		t.Errorf("after a change in the directory: %s cached %v, %v", third.Steps[0].Name, third.Steps[0].Cached, third.Steps[0].Reason)
	}
	e.fsck()
}

func TestCompression(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	e.busybox()
	dir := smallContext(t)
	res := e.mustBuild(dir, "FROM busybox\nCOPY conf/ /conf/\n", Request{Compression: "zstd"})
	_, m := e.image(res.Manifest.Digest)
	if got := string(m.Layers[len(m.Layers)-1].MediaType); got != layer.MediaTypeTarZstd {
		t.Errorf("new layer media type = %s, want zstd", got)
	}
	if _, err := e.build(dir, "", Request{Compression: "lz4"}); err == nil || !strings.Contains(err.Error(), "compression") {
		t.Errorf("Build with an unknown compression = %v", err)
	}
}
