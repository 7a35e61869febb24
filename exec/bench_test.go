package exec_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	"minibuild/exec"
	"minibuild/exec/exectest"
	"minibuild/internal/testenv"
)

// BenchmarkRunTrue measures the per-step overhead of a RUN: a fresh upper
// and work directory, the sandbox, `true`, and the cleanup.
func BenchmarkRunTrue(b *testing.B) {
	testenv.RequirePrivileged(b)
	lower := exectest.Root(b)
	dir := b.TempDir()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		n := strconv.Itoa(i)
		s := exec.Spec{
			Args: []string{"/bin/true"},
			Root: exec.RootSpec{Lower: []string{lower}, Upper: filepath.Join(dir, "u"+n), Work: filepath.Join(dir, "w"+n)},
		}
		if err := exec.Run(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
}
