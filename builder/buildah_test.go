package builder

import (
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	bt "minibuild/builder/buildertest"
	"minibuild/internal/testenv"
)

// TestCopyCasesAgainstBuildah builds every case of the COPY/ADD table with
// buildah (Debian's, `--storage-driver vfs`, store in a temp dir) and
// compares the trees. It is how the table's expectations were checked
// against a real builder; cases whose `buildah` field is "same" must
// match, the others are logged with the difference. Opt-in, it takes a
// minute or two:
//
//	MINIBUILD_BUILDAH=1 MINIBUILD_PRIVILEGED=1 go test ./builder -run Buildah -v
func TestCopyCasesAgainstBuildah(t *testing.T) {
	if os.Getenv("MINIBUILD_BUILDAH") != "1" {
		t.Skip("set MINIBUILD_BUILDAH=1 to compare the COPY/ADD table with buildah")
	}
	testenv.RequirePrivileged(t)
	bh := newBuildah(t, testenv.RequireTool(t, "buildah"))
	srv := newTestServer(t)
	for _, tc := range copyCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			df := strings.ReplaceAll(tc.dockerfile, "{{URL}}", srv)
			for name, entries := range tc.images {
				bh.image(t, name, entries)
			}
			ctxDir := t.TempDir()
			bt.Create(t, ctxDir, append([]bt.Entry{bt.File("Dockerfile", df, 0o600)}, tc.context...)...)
			args := []string{"build", "--layers=false", "-t", "localhost/case"}
			for k, v := range tc.args {
				args = append(args, "--build-arg", k+"="+v)
			}
			out, err := bh.run(append(args, ctxDir)...)
			if tc.wantErr != "" {
				t.Logf("buildah error: %v (want %q; buildah field: %s)\n%s", err, tc.wantErr, tc.buildah, lastLines(out, 3))
				if strings.HasPrefix(tc.buildah, "same") && err == nil {
					t.Errorf("buildah succeeded, the case expects an error")
				}
				return
			}
			if err != nil {
				t.Logf("buildah failed (buildah field: %s): %v\n%s", tc.buildah, err, lastLines(out, 5))
				if tc.buildah == "same" {
					t.Errorf("buildah build failed")
				}
				return
			}
			got := bh.tree(t, "localhost/case")
			diff := cmp.Diff(bt.Format(expected(tc.want, df)), bt.Format(got))
			switch {
			case diff == "":
				t.Logf("same as buildah")
			case tc.buildah == "same":
				t.Errorf("buildah differs (-minibuild +buildah):\n%s", diff)
			default:
				t.Logf("known divergence %q (-minibuild +buildah):\n%s", tc.buildah, diff)
			}
		})
	}
}

type buildah struct {
	bin, store string
}

func newBuildah(t *testing.T, bin string) *buildah {
	store := t.TempDir()
	b := &buildah{bin: bin, store: store}
	t.Cleanup(func() {
		// vfs layers are plain directories; unmount anything left mounted.
		b.run("unmount", "--all")
	})
	return b
}

func (b *buildah) run(args ...string) (string, error) {
	base := []string{"--storage-driver", "vfs", "--root", filepath.Join(b.store, "root"), "--runroot", filepath.Join(b.store, "run")}
	out, err := osexec.Command(b.bin, append(base, args...)...).CombinedOutput()
	return string(out), err
}

// image makes localhost/<name> from a tree (an ADD of its tar, so owners
// and modes are kept).
func (b *buildah) image(t *testing.T, name string, entries []bt.Entry) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	bt.Create(t, root, entries...)
	if out, err := osexec.Command("tar", "-C", root, "--numeric-owner", "-cf", filepath.Join(dir, "img.tar"), ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nADD img.tar /\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if out, err := b.run("build", "--layers=false", "-t", "localhost/"+name, dir); err != nil {
		t.Fatalf("buildah build %s: %v\n%s", name, err, out)
	}
}

// tree mounts an image's root filesystem and reads it.
func (b *buildah) tree(t *testing.T, image string) []bt.Entry {
	t.Helper()
	ctr, err := b.run("from", image)
	if err != nil {
		t.Fatalf("buildah from: %v: %s", err, ctr)
	}
	ctr = strings.TrimSpace(lastLines(ctr, 1))
	defer b.run("rm", ctr)
	mnt, err := b.run("mount", ctr)
	if err != nil {
		t.Fatalf("buildah mount: %v: %s", err, mnt)
	}
	defer b.run("unmount", ctr)
	return bt.Read(t, strings.TrimSpace(lastLines(mnt, 1)))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
