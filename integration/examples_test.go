package integration

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite examples/*/expected/ from this build instead of comparing")

// exampleNames lists the examples/ directories that hold a Dockerfile.
func exampleNames(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(repoPath(t, "examples"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if _, err := os.Stat(repoPath(t, "examples", e.Name(), "Dockerfile")); e.IsDir() && err == nil {
			names = append(names, e.Name())
		}
	}
	if len(names) < 10 {
		t.Fatalf("examples/ has %d cases, want at least 10", len(names))
	}
	return names
}

// exampleEpoch is the mtime of every file of a copied example; another
// value in the reproducibility test must not change any digest.
func exampleEpoch() time.Time { return time.Date(2021, 6, 7, 8, 9, 10, 0, time.UTC) }

// buildExample copies examples/name into e's scratch space with mtime,
// builds it with its flags file, tagged "example", and returns the
// directory the root filesystem was written to.
func buildExample(t *testing.T, e *Env, name string, mtime time.Time, extra ...string) (rootfs string, r Result) {
	t.Helper()
	ctx := e.Path("ctx-" + name)
	copyExample(t, name, ctx, mtime)
	rootfs = e.Path("rootfs-" + name)
	args := append([]string{"build", "--progress=plain", "-t", "example", "-o", "type=local,dest=" + rootfs}, exampleFlags(t, ctx)...)
	args = append(append(args, extra...), ".")
	return rootfs, e.RunIn(ctx, args...)
}

// TestExamples builds every examples/ case in a fresh store on the busybox
// base and compares the image's files (expected/listing.txt) and config
// (expected/config.json) with the golden files; -update rewrites them.
//
// The listing leaves out the base image's own files (they depend on the
// host's busybox-static) when the image's first layers are the base's:
// it shows the paths the Dockerfile added or changed, and deleted ones.
func TestExamples(t *testing.T) {
	t.Parallel()
	archive := busyboxArchive(t)
	setup := newBuildEnv(t, archive)
	baseRoot := setup.Path("busybox-rootfs")
	os.MkdirAll(setup.Path("from-busybox"), 0o755)
	writeFile(t, setup.Path("from-busybox", "Dockerfile"), []byte("FROM busybox\n"))
	setup.MustRun("build", "--progress=plain", "-o", "type=local,dest="+baseRoot, setup.Path("from-busybox"))
	baseFiles := listTree(t, baseRoot)
	base := setup.inspect("busybox")

	for _, name := range exampleNames(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newBuildEnv(t, archive)
			rootfs, r := buildExample(t, e, name, exampleEpoch())
			if r.ExitCode != 0 {
				t.Fatalf("build examples/%s: %v", name, r)
			}
			img := e.inspect("example")
			var subtract map[string]fileEntry
			if hasPrefixLayers(img, base) {
				subtract = baseFiles
			}
			listing := formatListing(listTree(t, rootfs), subtract)
			config, err := json.MarshalIndent(img.Config, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			config = append(config, '\n')
			checkGolden(t, repoPath(t, "examples", name, "expected", "listing.txt"), []byte(listing))
			checkGolden(t, repoPath(t, "examples", name, "expected", "config.json"), config)
			e.Fsck()
		})
	}
}

// checkGolden compares got with the golden file path, or writes it with
// -update.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./integration -run TestExamples -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}
