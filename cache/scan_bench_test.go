//go:build linux

package cache_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"minibuild/cache"
	"minibuild/cache/cachetest"
)

// benchContext returns a 20k-file tree shaped like
// bench/corpus/02-many-files: $MINIBUILD_BENCH_CONTEXT (e.g. made by its
// gen.sh) or a generated one. It waits until the files are older than
// RacyWindow, as a context that was not just edited is.
func benchContext(b *testing.B) string {
	b.Helper()
	if dir := os.Getenv("MINIBUILD_BENCH_CONTEXT"); dir != "" {
		return dir
	}
	dir := b.TempDir()
	cachetest.ManyFiles(b, dir, cachetest.ManyFilesOptions{Large: 4})
	time.Sleep(cache.RacyWindow + 100*time.Millisecond)
	return dir
}

// dockerignore02 is bench/corpus/02-many-files/.dockerignore as a Select.
func dockerignore02(rel string, isDir bool) (bool, bool) {
	if strings.HasSuffix(rel, ".tmp") || rel == "gen.sh" || rel == "bench.conf" {
		return false, false
	}
	return true, true
}

// BenchmarkNoopScan is the context part of a no-op rebuild of corpus 02:
// load the stat cache, scan 20k files (all stat-cache hits), digest the
// COPY sources, save (nothing to write).
func BenchmarkNoopScan(b *testing.B) {
	dir := benchContext(b)
	statPath := filepath.Join(b.TempDir(), "stat")
	ctx := context.Background()
	warm, err := cache.LoadStatCache(statPath)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := cache.Scan(ctx, dir, cache.ScanOptions{Select: dockerignore02, Cache: warm}); err != nil {
		b.Fatal(err)
	}
	if err := warm.Save(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		sc, err := cache.LoadStatCache(statPath)
		if err != nil {
			b.Fatal(err)
		}
		files, err := cache.Scan(ctx, dir, cache.ScanOptions{Select: dockerignore02, Cache: sc})
		if err != nil {
			b.Fatal(err)
		}
		cache.Digest(cache.Subtrees(files, "small"))
		cache.Digest(cache.Subtrees(files, "large"))
		if err := sc.Save(); err != nil {
			b.Fatal(err)
		}
		if sc.Len() < 20000 {
			b.Fatalf("stat cache has %d entries, want ≥ 20000", sc.Len())
		}
	}
	reportCPU(b, cpu)
}

// cpuTime is this process's user and system CPU time.
func cpuTime() [2]time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return [2]time.Duration{}
	}
	return [2]time.Duration{time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())}
}

// reportCPU adds user and system CPU time per op: wall time is noisy on a
// shared machine, and system time is mostly the one fstatat per file.
func reportCPU(b *testing.B, start [2]time.Duration) {
	end := cpuTime()
	b.ReportMetric(float64(end[0]-start[0])/float64(b.N)/1e6, "user-ms/op")
	b.ReportMetric(float64(end[1]-start[1])/float64(b.N)/1e6, "sys-ms/op")
}

// BenchmarkNoopBuildCache is all of the cache package's work in a no-op
// rebuild of corpus 02 (FROM busybox; COPY small/; COPY large/; RUN;
// COPY app.conf): stat cache, scan, listings, four lookups, build log.
func BenchmarkNoopBuildCache(b *testing.B) {
	dir := benchContext(b)
	store, err := cache.Open(filepath.Join(b.TempDir(), "cache"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	build := func() int {
		sc, err := store.StatCache(dir)
		if err != nil {
			b.Fatal(err)
		}
		files, err := cache.Scan(ctx, dir, cache.ScanOptions{Select: dockerignore02, Cache: sc})
		if err != nil {
			b.Fatal(err)
		}
		if err := sc.Save(); err != nil {
			b.Fatal(err)
		}
		id := cache.BuildID(filepath.Join(dir, "Dockerfile"), dir, "")
		prev, _, err := store.LastBuild(id)
		if err != nil {
			b.Fatal(err)
		}
		cur := cache.Build{ID: id, Dockerfile: filepath.Join(dir, "Dockerfile"), Context: dir}
		parent := cache.ImageParent(hash("bb"), "busybox")
		hits := 0
		for i, src := range []string{"small/", "large/", "", "app.conf"} {
			p := cache.Parts{Parent: parent, Platform: "linux/amd64"}
			if src == "" {
				p.Instruction = "RUN find /srv -type f | wc -l > /tmp/filecount && mv /tmp/filecount /srv/filecount"
				p.Env = cache.Scope{Env: []string{"PATH=/bin"}}.Observed(cache.ObservesRunShell)
			} else {
				p.Instruction = "COPY " + src + " /srv/" + src
				listing, err := store.PutFiles(cache.Subtrees(files, src))
				if err != nil {
					b.Fatal(err)
				}
				p.Inputs = []cache.Input{{Kind: cache.InputContext, Digest: listing}}
			}
			k := p.Key()
			_, hit, err := store.Get(k)
			if err != nil {
				b.Fatal(err)
			}
			if !hit {
				if err := store.Put(cache.Record{Parts: p}); err != nil {
					b.Fatal(err)
				}
			} else {
				hits++
			}
			cur.Steps = append(cur.Steps, cache.StepLog{Index: i + 1, Total: 4, Key: k, Parts: p, Cached: hit})
			parent = cache.StepParent(k)
		}
		cache.ExplainBuild(&prev, cur, store)
		if err := store.PutBuild(cur); err != nil {
			b.Fatal(err)
		}
		return hits
	}
	build()
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		if hits := build(); hits != 4 {
			b.Fatalf("%d hits, want 4", hits)
		}
	}
	reportCPU(b, cpu)
}

// BenchmarkListing20k stores and loads a 20k-entry listing (what explain
// reads to name changed files).
func BenchmarkListing20k(b *testing.B) {
	store, err := cache.Open(filepath.Join(b.TempDir(), "cache"))
	if err != nil {
		b.Fatal(err)
	}
	files := make([]cache.File, 0, 20000)
	for i := range 20000 {
		files = append(files, cache.File{
			Path: fmt.Sprintf("small/p%02d/q%d/f%03d.txt", i/1000, i/100%10, i%100),
			Type: cache.TypeFile, Mode: 0o644, Size: int64(64 + i%8000), Digest: sha(fmt.Sprint(i)),
		})
	}
	id, err := store.PutFiles(files)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, found, err := store.Files(id); !found || err != nil {
			b.Fatalf("Files = %v, %v", found, err)
		}
	}
}

// BenchmarkColdScan hashes every file (no stat cache): a first build.
func BenchmarkColdScan(b *testing.B) {
	dir := benchContext(b)
	cpu := cpuTime()
	for b.Loop() {
		if _, err := cache.Scan(context.Background(), dir, cache.ScanOptions{Select: dockerignore02}); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
}
