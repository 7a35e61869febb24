package builder

import (
	"context"
	"errors"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"minibuild/cache"
	"minibuild/exec"
	"minibuild/internal/testenv"
	"minibuild/oci"
)

// TestMain lets the test binary serve as the RUN sandbox's init, as
// cmd/minibuild's main does (exec.Run re-executes /proc/self/exe).
func TestMain(m *testing.M) {
	if exec.IsInit() {
		exec.Init()
	}
	os.Exit(m.Run())
}

// engine is a Builder on a fresh store, counting the expensive things it
// does.
type engine struct {
	t     *testing.T
	root  string
	store *oci.Store
	cache *cache.Store
	b     *Builder

	mu     sync.Mutex
	counts map[string]int
	events []Event
}

func newEngine(t *testing.T) *engine {
	t.Helper()
	testenv.RequirePrivileged(t)
	root := t.TempDir()
	store, err := oci.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cs, err := cache.Open(filepath.Join(root, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	e := &engine{t: t, root: root, store: store, cache: cs, counts: map[string]int{}}
	e.b = New(store, cs)
	e.b.trace = func(what string) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.counts[what]++
	}
	return e
}

// build runs a build of the Dockerfile text in ctxDir (written there as
// Dockerfile), recording events.
func (e *engine) build(ctxDir, dockerfile string, req Request) (*Result, error) {
	e.t.Helper()
	if dockerfile != "" {
		writeFile(e.t, filepath.Join(ctxDir, "Dockerfile"), dockerfile)
	}
	req.Context = ctxDir
	if req.Dockerfile == "" {
		req.Dockerfile = filepath.Join(ctxDir, "Dockerfile")
	}
	e.mu.Lock()
	e.events = nil
	e.mu.Unlock()
	req.Progress = func(ev Event) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.events = append(e.events, ev)
	}
	return e.b.Build(context.Background(), req)
}

func (e *engine) mustBuild(ctxDir, dockerfile string, req Request) *Result {
	e.t.Helper()
	res, err := e.build(ctxDir, dockerfile, req)
	if err != nil {
		e.t.Fatalf("Build: %v", err)
	}
	return res
}

// resetCounts forgets what was counted so far and returns it.
func (e *engine) resetCounts() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.counts
	e.counts = map[string]int{}
	return c
}

func (e *engine) recorded() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.events)
}

// busybox builds the test base image from the host's static busybox: the
// binary, a symlink per applet (busybox --list-full), /etc/passwd and
// /etc/group with root, /tmp and /root; tagged "busybox".
func (e *engine) busybox() *Result {
	e.t.Helper()
	return e.mustBuild(busyboxContext(e.t), "", Request{Tags: []string{"busybox"}})
}

var busyboxOnce struct {
	sync.Mutex
	dir string
}

// busyboxContext makes the busybox build context once per test binary.
func busyboxContext(t testing.TB) string {
	t.Helper()
	busyboxOnce.Lock()
	defer busyboxOnce.Unlock()
	if busyboxOnce.dir != "" {
		return busyboxOnce.dir
	}
	bin := testenv.RequireTool(t, "busybox")
	out, err := osexec.Command(bin, "--list-full").Output()
	if err != nil {
		t.Fatalf("busybox --list-full: %v", err)
	}
	dir, err := os.MkdirTemp("", "minibuild-busybox-")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	writeFileMode(t, filepath.Join(dir, "bin/busybox"), string(data), 0o755)
	for _, applet := range strings.Fields(string(out)) {
		p := filepath.Join(dir, applet)
		if applet == "bin/busybox" {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/bin/busybox", p); err != nil && !errors.Is(err, os.ErrExist) {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(dir, "Dockerfile"), "FROM scratch\nCOPY . /\n")
	writeFile(t, filepath.Join(dir, ".dockerignore"), "Dockerfile\n.dockerignore\n")
	writeFile(t, filepath.Join(dir, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")
	writeFile(t, filepath.Join(dir, "etc/group"), "root:x:0:\n")
	for _, d := range []struct {
		p    string
		mode os.FileMode
	}{{"tmp", 0o1777}, {"root", 0o700}} {
		if err := os.Mkdir(filepath.Join(dir, d.p), d.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, d.p), d.mode); err != nil {
			t.Fatal(err)
		}
	}
	busyboxOnce.dir = dir
	return dir
}

func writeFile(t testing.TB, p, data string) { writeFileMode(t, p, data, 0o644) }

func writeFileMode(t testing.TB, p, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// copyTree copies a directory (cp -a) into a new temp dir, writable.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	if out, err := osexec.Command("cp", "-a", src+"/.", dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s: %v: %s", src, err, out)
	}
	if out, err := osexec.Command("chmod", "-R", "u+w", dst).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v: %s", err, out)
	}
	return dst
}

// corpus is the path of a bench corpus project.
func corpus(name string) string { return filepath.Join("..", "bench", "corpus", name) }

// listDir lists the names in dir, sorted ("" entries for a missing dir).
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// storeState is what a failed build must not change: blobs, snapshots
// and cache records.
func (e *engine) storeState() map[string][]string {
	e.t.Helper()
	var records []string
	_ = e.cache.Walk(context.Background(), func(r cache.Record) error {
		records = append(records, r.Key.String())
		return nil
	})
	sort.Strings(records)
	return map[string][]string{
		"blobs":     listDir(e.t, filepath.Join(e.root, "oci/blobs/sha256")),
		"snapshots": listDir(e.t, filepath.Join(e.root, "snapshots")),
		"records":   records,
	}
}

// image reads the config and manifest of a built image.
func (e *engine) image(d v1.Hash) (*v1.ConfigFile, *v1.Manifest) {
	e.t.Helper()
	img, err := e.store.Image(d)
	if err != nil {
		e.t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		e.t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		e.t.Fatal(err)
	}
	return cfg, m
}

// fsck fails the test if the store has problems.
func (e *engine) fsck() {
	e.t.Helper()
	rep, err := e.store.Fsck(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	if !rep.OK() {
		e.t.Errorf("fsck: %v", rep.Problems)
	}
}

// mountCount is the number of mounts this process sees.
func mountCount(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}
