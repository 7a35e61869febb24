//go:build linux

package cache

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// These tests are internal: to test the racy-timestamp rule without
// sleeping, they move a cache's notion of when it was written.

func digestOf(s string) v1.Hash { return sha256Hash([]byte(s)) }

// ageCache makes c behave as if it had been loaded (and its file written)
// long after now, so files written by the test are not racy.
func ageCache(c *StatCache) {
	c.session = time.Now().Add(time.Hour)
	c.base.written = c.session
	for i := range c.deltas {
		c.deltas[i].written = c.session
	}
}

func loadStat(t *testing.T, path string) *StatCache {
	t.Helper()
	c, err := LoadStatCache(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStatCacheRacy(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "stat")
	now := time.Now()
	old := Stat{Dev: 1, Ino: 2, Mode: 0o100644, Size: 5, Mtime: now.Add(-time.Hour).UnixNano(), Ctime: now.Add(-time.Hour).UnixNano()}
	fresh := old
	fresh.Ino, fresh.Mtime = 3, now.UnixNano()
	freshCtime := old
	freshCtime.Ino, freshCtime.Ctime = 4, now.UnixNano()
	c := loadStat(t, path)
	c.Add("old", old, digestOf("a"), nil)
	c.Add("fresh", fresh, digestOf("a"), nil)
	c.Add("fresh-ctime", freshCtime, digestOf("a"), nil)
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	c = loadStat(t, path)
	if _, _, ok := c.Lookup("old", old); !ok {
		t.Errorf("Lookup(old entry) missed")
	}
	// An entry written in the same second as the cache (same size, same
	// mtime) is never trusted: the file may have changed again since.
	if _, _, ok := c.Lookup("fresh", fresh); ok {
		t.Errorf("Lookup(entry with mtime as new as the cache) hit")
	}
	if _, _, ok := c.Lookup("fresh-ctime", freshCtime); ok {
		t.Errorf("Lookup(entry with ctime as new as the cache) hit")
	}
	if c.Len() != 1 {
		t.Errorf("Len() = %d, want 1 (racy entries are not saved)", c.Len())
	}
}

// TestStatCacheRacyRuleIsTheGuard forges the dangerous case a filesystem
// can produce: a file rewritten within one timestamp tick, so size,
// mtime and even ctime are what the cache recorded for the old content.
// Only the racy rule stands between that and a stale digest.
func TestStatCacheRacyRuleIsTheGuard(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("new!!"), 0o644); err != nil {
		t.Fatal(err)
	}
	var sys syscall.Stat_t
	if err := syscall.Lstat(file, &sys); err != nil {
		t.Fatal(err)
	}
	st := statOf(&sys) // the stat of the new content
	// forge writes a cache file, written at the given time, claiming that
	// st belongs to the old content "old!!" (same size).
	forge := func(written time.Time) *StatCache {
		c := &StatCache{path: filepath.Join(t.TempDir(), "stat"), added: map[string]*statEntry{}}
		c.session = time.Now().Add(time.Hour) // so encode keeps the entry
		c.Add("f", st, digestOf("old!!"), nil)
		c.mu.Lock()
		data := c.encode()
		c.mu.Unlock()
		body := data[:len(data)-4]
		binary.LittleEndian.PutUint64(body[16:], uint64(written.UnixNano()))
		data = binary.LittleEndian.AppendUint32(body, crc32.Checksum(body, castagnoli()))
		if err := os.WriteFile(c.path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c = loadStat(t, c.path)
		if c.Len() != 1 {
			t.Fatalf("forged cache has %d entries, want 1", c.Len())
		}
		return c
	}
	// The cache was written in the same second as the file: re-hashed.
	c := forge(time.Unix(0, st.Mtime))
	if d, err := c.Digest(file, "f"); err != nil || d != digestOf("new!!") {
		t.Errorf("Digest after a same-second rewrite = %s, %v; want the new content's digest", d, err)
	}
	c = forge(time.Unix(0, st.Mtime).Add(RacyWindow - time.Millisecond))
	if d, _ := c.Digest(file, "f"); d != digestOf("new!!") {
		t.Errorf("Digest with the cache written just inside RacyWindow = %s; want the new content's digest", d)
	}
	// Written well after the file: the entry is trusted (by design, a
	// file cannot change later without its mtime or ctime changing).
	c = forge(time.Unix(0, st.Mtime).Add(RacyWindow + time.Second))
	if d, _ := c.Digest(file, "f"); d != digestOf("old!!") {
		t.Errorf("Digest with an old, matching entry = %s; want the cached digest", d)
	}
}

func TestStatCacheExactMatch(t *testing.T) {
	t.Parallel()
	base := Stat{Dev: 1, Ino: 2, Mode: 0o100644, Size: 5, Mtime: 1e18, Ctime: 1e18}
	c := &StatCache{added: map[string]*statEntry{}, session: time.Unix(0, 2e18)}
	c.Add("f", base, digestOf("x"), map[string]string{"user.a": "1"})
	d, x, ok := c.Lookup("f", base)
	if !ok || d != digestOf("x") || x["user.a"] != "1" {
		t.Fatalf("Lookup(same stat) = %s, %v, %v", d, x, ok)
	}
	for name, mut := range map[string]func(*Stat){
		"dev": func(s *Stat) { s.Dev++ }, "inode": func(s *Stat) { s.Ino++ }, "mode": func(s *Stat) { s.Mode = 0o100755 },
		"size": func(s *Stat) { s.Size++ }, "mtime": func(s *Stat) { s.Mtime++ }, "ctime": func(s *Stat) { s.Ctime++ },
	} {
		st := base
		mut(&st)
		if _, _, ok := c.Lookup("f", st); ok {
			t.Errorf("Lookup with another %s hit", name)
		}
	}
	if _, _, ok := c.Lookup("g", base); ok {
		t.Errorf("Lookup of another path hit")
	}
}

func TestStatCacheSaveLoad(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "stat")
	c := loadStat(t, path)
	if err := c.Save(); err != nil { // nothing added: no file
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("Save of an unchanged cache wrote a file")
	}
	ageCache(c)
	st := Stat{Dev: 1, Ino: 7, Mode: 0o100600, Size: 9, Mtime: 100, Ctime: 200}
	c.Add("dir/file", st, digestOf("content"), map[string]string{"user.k": "v"})
	c.Add("gone", Stat{Ino: 8}, digestOf("x"), nil)
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	c = loadStat(t, path)
	ageCache(c)
	if d, x, ok := c.Lookup("dir/file", st); !ok || d != digestOf("content") || x["user.k"] != "v" {
		t.Errorf("Lookup after Save/Load = %s, %v, %v", d, x, ok)
	}
	// Saving again keeps only entries used since loading: "gone" drops.
	c.Add("new", Stat{Ino: 9}, digestOf("y"), nil)
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	c = loadStat(t, path)
	if c.Len() != 2 {
		t.Errorf("Len() after second Save = %d, want 2 (dir/file, new)", c.Len())
	}
}

func TestStatCacheCorrupt(t *testing.T) {
	t.Parallel()
	for name, damage := range map[string]func([]byte) []byte{
		"flipped bit": func(b []byte) []byte { b[len(b)/2] ^= 1; return b },
		"truncated":   func(b []byte) []byte { return b[:len(b)-10] },
		"empty":       func([]byte) []byte { return nil },
		"other file":  func([]byte) []byte { return []byte("hello") },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "stat")
			c := loadStat(t, path)
			ageCache(c)
			c.Add("f", Stat{Ino: 1}, digestOf("x"), nil)
			if err := c.Save(); err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(path)
			if err := os.WriteFile(path, damage(data), 0o600); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			c, err := LoadStatCache(path, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			if err != nil || c.Len() != 0 {
				t.Fatalf("LoadStatCache(corrupt) = %d entries, %v; want an empty cache", c.Len(), err)
			}
			if !strings.Contains(logs.String(), "corrupt stat cache") {
				t.Errorf("corrupt stat cache not reported")
			}
		})
	}
}

// TestScanWithStatCache covers the stat cache through Scan: touch-only
// changes and inode changes re-hash to the same digest, a same-size edit
// is seen, and racy entries are re-hashed.
func TestScanWithStatCache(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	statPath := filepath.Join(t.TempDir(), "stat")
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a", "aaaa")
	write("b", "bbbb")
	// scan returns the digests and whether anything was (re)hashed.
	scan := func() (map[string]v1.Hash, bool) {
		c := loadStat(t, statPath)
		ageCache(c)
		files, err := Scan(context.Background(), dir, ScanOptions{Cache: c})
		if err != nil {
			t.Fatal(err)
		}
		hashed := c.dirty
		if err := c.Save(); err != nil {
			t.Fatal(err)
		}
		out := map[string]v1.Hash{}
		for _, f := range files {
			out[f.Path] = f.Digest
		}
		return out, hashed
	}
	first, _ := scan()
	if first["a"] != digestOf("aaaa") {
		t.Fatalf("first scan = %v", first)
	}
	if _, hashed := scan(); hashed {
		t.Errorf("unchanged files were hashed again")
	}
	// Touch only: stat differs, content does not; same digest.
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(filepath.Join(dir, "a"), later, later); err != nil {
		t.Fatal(err)
	}
	if got, hashed := scan(); got["a"] != first["a"] || !hashed {
		t.Errorf("after touch: digest %s (want %s), re-hashed %v (want true)", got["a"], first["a"], hashed)
	}
	// Same size, same mtime, new content (mtime restored by hand): seen,
	// because ctime (and here the racy rule) changed.
	var st syscall.Stat_t
	syscall.Lstat(filepath.Join(dir, "b"), &st)
	mtime := time.Unix(st.Mtim.Sec, st.Mtim.Nsec)
	write("b", "BBBB")
	os.Chtimes(filepath.Join(dir, "b"), mtime, mtime)
	if got, _ := scan(); got["b"] != digestOf("BBBB") {
		t.Errorf("digest after same-size same-mtime edit = %s, want the new content's", got["b"])
	}
	// New inode, same content and times (editor save by rename): same digest.
	os.WriteFile(filepath.Join(dir, "a.tmp"), []byte("aaaa"), 0o644)
	os.Chtimes(filepath.Join(dir, "a.tmp"), later, later)
	if err := os.Rename(filepath.Join(dir, "a.tmp"), filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	if got, _ := scan(); got["a"] != digestOf("aaaa") {
		t.Errorf("digest after replacing the inode = %s", got["a"])
	}
	// Without aging, freshly written files are racy: never cached.
	c := loadStat(t, filepath.Join(t.TempDir(), "stat2"))
	if _, err := Scan(context.Background(), dir, ScanOptions{Cache: c}); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 0 {
		t.Errorf("fresh files were cached: %d entries", c.Len())
	}
}

// TestStatCacheConcurrent runs scans sharing one cache (go test -race).
func TestStatCacheConcurrent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, d := range []string{"x", "y", "z"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
		for _, f := range []string{"1", "2", "3", "4"} {
			os.WriteFile(filepath.Join(dir, d, f), []byte(d+f), 0o644)
		}
	}
	c := loadStat(t, filepath.Join(t.TempDir(), "stat"))
	ageCache(c)
	var wg sync.WaitGroup
	results := make([][]File, 6)
	for i := range results {
		wg.Go(func() {
			files, err := Scan(context.Background(), dir, ScanOptions{Cache: c, Jobs: 3})
			if err != nil {
				t.Error(err)
			}
			results[i] = files
			if i%2 == 0 {
				if err := c.Save(); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for i := range results {
		if Digest(results[i]) != Digest(results[0]) {
			t.Errorf("scan %d differs from scan 0", i)
		}
	}
	if c.Len() != 12 {
		t.Errorf("Len() = %d, want 12", c.Len())
	}
}
