//go:build linux

package builder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"minibuild/cache"
	"minibuild/internal/testenv"
	"minibuild/oci"

	"golang.org/x/sys/unix"
)

// runTrueSteps is the number of RUN steps of BenchmarkBuildRunTrue's
// Dockerfile.
const runTrueSteps = 100

// BenchmarkBuildRunTrue measures the per-step overhead of RUN end to end
// through the builder: one op is a --no-cache build of a Dockerfile of
// 100 `RUN true` steps (each with its own text) on a busybox base built
// untimed. `true` changes nothing, so a step is the cache lookup, the
// scratch directories, the sandbox, the commit of an empty upper (a
// record, no layer) and the next step's scheduling.
//
// It reports, per step: ms/step, the median of the intervals between
// consecutive steps' completions (the first step's interval starts at
// the first step's start); mean-ms/step, the build's wall time divided by
// 100; and cpu-ms/step, the CPU time of the test process and its sandboxes
// divided by 100, which a busy machine inflates less than wall time.
//
//	MINIBUILD_PRIVILEGED=1 go test ./builder -run '^$' -bench BuildRunTrue -benchtime 3x
func BenchmarkBuildRunTrue(b *testing.B) {
	testenv.RequirePrivileged(b)
	root := b.TempDir()
	store, err := oci.Open(root)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	cs, err := cache.Open(filepath.Join(root, "cache"))
	if err != nil {
		b.Fatal(err)
	}
	bld := New(store, cs)
	ctx := context.Background()
	if _, err := bld.Build(ctx, Request{Context: busyboxContext(b), Tags: []string{"busybox"}}); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	var df strings.Builder
	df.WriteString("FROM busybox\n")
	for i := range runTrueSteps {
		fmt.Fprintf(&df, "RUN true %d\n", i)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	var (
		intervals []time.Duration
		wall, cpu time.Duration
	)
	for b.Loop() {
		steps := &stepTimes{}
		cpu0 := processCPU(b)
		start := time.Now()
		if _, err := bld.Build(ctx, Request{Context: dir, NoCache: true, Progress: steps.record}); err != nil {
			b.Fatal(err)
		}
		wall += time.Since(start)
		cpu += processCPU(b) - cpu0
		intervals = append(intervals, steps.intervals(b)...)
	}
	slices.Sort(intervals)
	n := float64(b.N * runTrueSteps)
	b.ReportMetric(float64(intervals[len(intervals)/2])/float64(time.Millisecond), "ms/step")
	b.ReportMetric(float64(wall)/float64(time.Millisecond)/n, "mean-ms/step")
	b.ReportMetric(float64(cpu)/float64(time.Millisecond)/n, "cpu-ms/step")
	b.ReportMetric(0, "ns/op") // one op is 100 steps: ms/step says more
}

// stepTimes collects the start of the first RUN step and the completion
// time of each.
type stepTimes struct {
	mu    sync.Mutex
	first time.Time
	done  []time.Time
}

func (s *stepTimes) record(ev Event) {
	if !strings.Contains(ev.Name, "RUN true") {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch ev.Kind {
	case EventStart:
		if s.first.IsZero() {
			s.first = ev.Time
		}
	case EventDone:
		s.done = append(s.done, ev.Time)
	}
}

// intervals returns the time each step added to the build.
func (s *stepTimes) intervals(b *testing.B) []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.done) != runTrueSteps {
		b.Fatalf("%d RUN steps done, want %d", len(s.done), runTrueSteps)
	}
	out := make([]time.Duration, 0, len(s.done))
	prev := s.first
	for _, t := range s.done {
		out = append(out, t.Sub(prev))
		prev = t
	}
	return out
}

// processCPU returns the user and system time of this process and its
// waited-for children (the sandboxes).
func processCPU(b *testing.B) time.Duration {
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
