//go:build linux

package layer_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"minibuild/layer"
)

// Benchmarks of Diff throughput, run by `scripts/bench.sh layer`. The
// fixtures are generated once (deterministically) under
// $MINIBUILD_BENCH_DIR (default $TMPDIR/minibuild-bench) and reused; the
// layer goes to io.Discard, so the figures are Diff's own: walk, read
// (page cache), tar, hash, compress. MB/s counts file content bytes.
// peak-RSS-MB is the process's largest resident set while Diff runs: it
// stays flat whatever the layer size because Diff streams. MB/cpu-s is
// throughput per CPU-second of the whole process (all cores together).

func BenchmarkDiff(b *testing.B) {
	fixtures := []struct {
		name string
		make func(dir string) error
	}{
		{"1GiB-file", makeBigFile},
		{"20k-files", makeSmallFiles},
	}
	for _, fx := range fixtures {
		dir, size := benchFixture(b, fx.name, fx.make)
		for _, c := range []layer.Compression{layer.Gzip, layer.Uncompressed, layer.Zstd} {
			b.Run(fx.name+"/"+string(c), func(b *testing.B) {
				b.SetBytes(size)
				peak := sampleRSS()
				cpu0 := cpuTime()
				var d layer.Descriptor
				for b.Loop() {
					var err error
					if d, err = layer.Diff(context.Background(), dir, io.Discard, layer.DiffOptions{Compression: c}); err != nil {
						b.Fatal(err)
					}
				}
				cpu := cpuTime() - cpu0
				b.ReportMetric(float64(peak())/(1<<20), "peak-RSS-MB")
				b.ReportMetric(float64(size)*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
				b.ReportMetric(float64(d.Size)/float64(d.UncompressedSize), "ratio")
			})
		}
	}
}

// benchFixture returns the fixture directory (made on first use) and the
// total size of its files.
func benchFixture(b *testing.B, name string, make func(string) error) (string, int64) {
	b.Helper()
	base := os.Getenv("MINIBUILD_BENCH_DIR")
	if base == "" {
		base = filepath.Join(os.TempDir(), "minibuild-bench")
	}
	dir := filepath.Join(base, "layer-"+name)
	stamp := dir + ".done"
	if _, err := os.Stat(stamp); err != nil {
		b.Logf("generating %s (once)", dir)
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := make(dir); err != nil {
			b.Fatalf("generate %s: %v", dir, err)
		}
		if err := os.WriteFile(stamp, nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	var size int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			size += fi.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return dir, size
}

// makeBigFile writes 1 GiB of pseudo-random (incompressible) bytes, 1 MiB
// at a time.
func makeBigFile(dir string) error {
	f, err := os.Create(filepath.Join(dir, "blob.bin"))
	if err != nil {
		return err
	}
	r := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, 1<<20)
	for range 1024 {
		r.Read(buf)
		if _, err := f.Write(buf); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// makeSmallFiles mirrors bench/corpus/02-many-files/gen.sh's small/ part:
// 20,000 files of 64 B to 8 KiB of random bytes in 200 directories.
func makeSmallFiles(dir string) error {
	r := rand.New(rand.NewPCG(20240601, 0))
	src := rand.NewChaCha8([32]byte{2})
	buf := make([]byte, 8192)
	for a := range 20 {
		for q := range 10 {
			sub := filepath.Join(dir, "small", fmt.Sprintf("p%02d", a), fmt.Sprintf("q%d", q))
			if err := os.MkdirAll(sub, 0o755); err != nil {
				return err
			}
			for i := range 100 {
				n := 64 + r.IntN(8192-64+1)
				src.Read(buf[:n])
				if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%03d.txt", i)), buf[:n], 0o644); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// sampleRSS polls the resident set size every 5 ms until the returned
// function is called, which returns the largest value seen.
func sampleRSS() func() int64 {
	var (
		mu   sync.Mutex
		peak int64
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	sample := func() {
		if v := rss(); v > 0 {
			mu.Lock()
			peak = max(peak, v)
			mu.Unlock()
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			sample()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		wg.Wait()
		sample()
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// cpuTime is the CPU time (user + system) the process has used so far.
// MB per CPU-second is steadier than MB/s on a machine others load too.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rss reads the resident set size from /proc/self/statm (0 on error).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(bytes.TrimSpace(b)))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}
