//go:build linux

package exec_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"minibuild/exec"
	"minibuild/exec/exectest"
	"minibuild/internal/testenv"
)

// TestWithRootsReadsOneWritesAnother copies a file from one mounted root
// into another, as COPY --from does.
func TestWithRootsReadsOneWritesAnother(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	srcLower, dstLower := t.TempDir(), t.TempDir()
	exectest.WriteFiles(t, srcLower, map[string]string{"out/app": "binary"})
	exectest.WriteFiles(t, dstLower, map[string]string{"etc/os": "base"})
	src, dst := exectest.NewRoot(t, srcLower), exectest.NewRoot(t, dstLower)
	err := exec.WithRoots(context.Background(), []exec.RootSpec{dst, src}, func(m []string) error {
		if len(m) != 2 {
			t.Fatalf("WithRoots gave %d paths, want 2", len(m))
		}
		b, err := os.ReadFile(filepath.Join(m[1], "out/app"))
		if err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(m[0], "etc/os")); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(m[0], "app"), b, 0o755)
	})
	if err != nil {
		t.Fatalf("WithRoots = %v", err)
	}
	if got := exectest.Tree(t, dst.Upper); !slices.Equal(got, []string{"app"}) {
		t.Errorf("destination upper = %q, want [app]", got)
	}
	if got := exectest.Tree(t, src.Upper); got != nil {
		t.Errorf("source upper = %q, want it untouched", got)
	}
	for _, r := range []exec.RootSpec{src, dst} {
		if got := exectest.Tree(t, r.Work); got != nil {
			t.Errorf("work %s = %q, want empty", r.Work, got)
		}
	}
}
