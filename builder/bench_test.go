package builder

import (
	"context"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"minibuild/cache"
	"minibuild/oci"
)

// benchContext is a corpus project copied (and generated with its gen.sh)
// under $MINIBUILD_BENCH_DIR (default /var/tmp/minibuild-bench), once:
// later runs reuse it, so its files keep their timestamps and the stat
// cache works as it does for a user.
func benchContext(b *testing.B, name string) string {
	b.Helper()
	base := os.Getenv("MINIBUILD_BENCH_DIR")
	if base == "" {
		base = "/var/tmp/minibuild-bench"
	}
	dir := filepath.Join(base, name)
	if _, err := os.Stat(filepath.Join(dir, ".ready")); err == nil {
		return dir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	src := corpus(name)
	if out, err := osexec.Command("cp", "-a", src+"/.", dir).CombinedOutput(); err != nil {
		b.Fatalf("cp: %v: %s", err, out)
	}
	if out, err := osexec.Command("chmod", "-R", "u+w", dir).CombinedOutput(); err != nil {
		b.Fatalf("chmod: %v: %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(src, "gen.sh")); err == nil {
		if out, err := osexec.Command("bash", filepath.Join(src, "gen.sh"), dir).CombinedOutput(); err != nil {
			b.Fatalf("gen.sh: %v: %s", err, out)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, ".ready"), nil, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkNoOp measures a rebuild of an unchanged corpus project (the
// figure `make bench` reports as no-op): a fresh Builder per iteration on
// a store that has built the project before, as a new minibuild process
// would.
//
//	MINIBUILD_PRIVILEGED=1 go test ./builder -run '^$' -bench NoOp -benchtime 20x
func BenchmarkNoOp(b *testing.B) {
	for _, name := range []string{"01-seed-layers", "02-many-files", "03-multistage", "06-metadata"} {
		b.Run(name, func(b *testing.B) {
			if os.Geteuid() != 0 {
				b.Skip("needs root")
			}
			dir := benchContext(b, name)
			root := b.TempDir()
			req := Request{Context: dir, Tags: []string{"bench"}}
			open := func() (*Builder, func()) {
				store, err := oci.Open(root)
				if err != nil {
					b.Fatal(err)
				}
				cs, err := cache.Open(filepath.Join(root, "cache"))
				if err != nil {
					b.Fatal(err)
				}
				return New(store, cs), func() { store.Close() }
			}
			bld, done := open()
			if _, err := bld.Build(context.Background(), Request{Context: busyboxContext(b), Tags: []string{"busybox"}}); err != nil {
				b.Fatal(err)
			}
			if _, err := bld.Build(context.Background(), req); err != nil {
				b.Fatal(err)
			}
			done()
			b.ResetTimer()
			for b.Loop() {
				bld, done := open()
				res, err := bld.Build(context.Background(), req)
				if err != nil {
					b.Fatal(err)
				}
				for _, s := range res.Steps {
					if !s.Cached {
						b.Fatalf("step %s missed", s.Name)
					}
				}
				done()
			}
		})
	}
}

// BenchmarkCold measures a first build of a corpus project on a store
// that has only the busybox base (built untimed), with --jobs 1 and 2.
//
//	MINIBUILD_PRIVILEGED=1 go test ./builder -run '^$' -bench Cold -benchtime 3x
func BenchmarkCold(b *testing.B) {
	for _, name := range []string{"01-seed-layers", "03-multistage", "04-copy-link", "06-metadata"} {
		for _, jobs := range []int{1, 2} {
			b.Run(name+"/jobs="+strconv.Itoa(jobs), func(b *testing.B) {
				if os.Geteuid() != 0 {
					b.Skip("needs root")
				}
				dir := benchContext(b, name)
				for b.Loop() {
					b.StopTimer()
					root := b.TempDir()
					store, err := oci.Open(root)
					if err != nil {
						b.Fatal(err)
					}
					cs, err := cache.Open(filepath.Join(root, "cache"))
					if err != nil {
						b.Fatal(err)
					}
					bld := New(store, cs)
					if _, err := bld.Build(context.Background(), Request{Context: busyboxContext(b), Tags: []string{"busybox"}}); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					if _, err := bld.Build(context.Background(), Request{Context: dir, Jobs: jobs}); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					store.Close()
					b.StartTimer()
				}
			})
		}
	}
}
