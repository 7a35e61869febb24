//go:build linux

package exec_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"minibuild/exec"
	"minibuild/exec/exectest"
	"minibuild/internal/testenv"

	"golang.org/x/sys/unix"
)

// BenchmarkRunTrue measures the per-step overhead of a RUN: a fresh upper
// and work directory, the sandbox, `true`, and the cleanup, with [Run]
// (each sandbox's init started on demand) and with a [Runner] (the init
// started while the previous step ran). Besides wall time it reports the
// CPU time of minibuild and the sandbox (cpu-ms/op), which a busy machine
// inflates less.
func BenchmarkRunTrue(b *testing.B) {
	testenv.RequirePrivileged(b)
	lower := exectest.Root(b)
	r := exec.NewRunner()
	defer r.Close()
	for _, bc := range []struct {
		name string
		run  func(context.Context, exec.Spec) error
	}{{"Run", exec.Run}, {"Runner", r.Run}} {
		b.Run(bc.name, func(b *testing.B) {
			dir := b.TempDir()
			ctx := context.Background()
			cpu0 := cpuTime(b)
			for i := 0; b.Loop(); i++ {
				n := strconv.Itoa(i)
				s := exec.Spec{
					Args: []string{"/bin/true"},
					Root: exec.RootSpec{Lower: []string{lower}, Upper: filepath.Join(dir, "u"+n), Work: filepath.Join(dir, "w"+n)},
				}
				if err := bc.run(ctx, s); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
		})
	}
}

// cpuTime returns the user and system time of this process and its
// waited-for children.
func cpuTime(b *testing.B) time.Duration {
	var total time.Duration
	for _, who := range []int{unix.RUSAGE_SELF, unix.RUSAGE_CHILDREN} {
		var ru unix.Rusage
		if err := unix.Getrusage(who, &ru); err != nil {
			b.Fatal(err)
		}
		total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return total
}

// BenchmarkWithRoot measures the overhead of an in-process step's root: a
// fresh upper and work directory, the overlay mount on a private thread,
// the unmount and the cleanup.
func BenchmarkWithRoot(b *testing.B) {
	testenv.RequirePrivileged(b)
	lower := exectest.Root(b)
	dir := b.TempDir()
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		n := strconv.Itoa(i)
		r := exec.RootSpec{Lower: []string{lower}, Upper: filepath.Join(dir, "u"+n), Work: filepath.Join(dir, "w"+n)}
		if err := exec.WithRoot(ctx, r, func(string) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
