//go:build linux

package cache

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// oldStat is the stat data of a file written long ago (never racy).
func oldStat(ino uint64) Stat {
	past := time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC).UnixNano()
	return Stat{Dev: 1, Ino: ino, Mode: 0o100644, Size: int64(ino), Mtime: past, Ctime: past}
}

// segments loads the stat cache at path and returns its base size and the
// number of records in each delta segment.
func segments(t *testing.T, path string) (base int, deltas []int, torn bool) {
	t.Helper()
	c := loadStat(t, path)
	for _, d := range c.deltas {
		deltas = append(deltas, d.n)
	}
	return c.base.n, deltas, c.torn
}

// baseCache saves a stat cache of n old entries f000…, and returns its
// path.
func baseCache(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stat")
	c := loadStat(t, path)
	for i := range n {
		c.Add(fmt.Sprintf("f%03d", i), oldStat(uint64(i)), digestOf(fmt.Sprint(i)), nil)
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	return path
}

// useAll looks up every entry of baseCache, as a no-op scan does.
func useAll(t *testing.T, c *StatCache, n int) {
	t.Helper()
	for i := range n {
		if _, _, ok := c.Lookup(fmt.Sprintf("f%03d", i), oldStat(uint64(i))); !ok {
			t.Fatalf("Lookup(f%03d) missed", i)
		}
	}
}

func lookupOK(c *StatCache, rel string, st Stat) bool {
	_, _, ok := c.Lookup(rel, st)
	return ok
}

// TestStatCacheAppends: a build that learned a few entries appends them
// as a small segment instead of rewriting the file; the next load sees
// base and delta entries alike.
func TestStatCacheAppends(t *testing.T) {
	t.Parallel()
	path := baseCache(t, 200)
	before, _ := os.Stat(path)
	c := loadStat(t, path)
	useAll(t, c, 200)
	c.Add("new", oldStat(1000), digestOf("new"), map[string]string{"user.k": "v"})
	c.Add("f001", oldStat(1001), digestOf("f001 edited"), nil)
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(path)
	if grown := after.Size() - before.Size(); grown <= 0 || grown > 512 {
		t.Errorf("Save of 2 entries grew the file by %d bytes, want one small segment", grown)
	}
	if base, deltas, _ := segments(t, path); base != 200 || len(deltas) != 1 || deltas[0] != 2 {
		t.Errorf("segments after an append: base %d, deltas %v; want 200 and [2]", base, deltas)
	}
	c = loadStat(t, path)
	if d, x, ok := c.Lookup("new", oldStat(1000)); !ok || d != digestOf("new") || x["user.k"] != "v" {
		t.Errorf("Lookup(appended entry) = %s, %v, %v", d, x, ok)
	}
	if d, _, ok := c.Lookup("f001", oldStat(1001)); !ok || d != digestOf("f001 edited") {
		t.Errorf("Lookup(entry updated by a delta) = %s, %v", d, ok)
	}
	if d, _, ok := c.Lookup("f002", oldStat(2)); !ok || d != digestOf("2") {
		t.Errorf("Lookup(base entry) = %s, %v", d, ok)
	}
	if c.Len() != 201 {
		t.Errorf("Len() = %d, want 201", c.Len())
	}
	// Nothing new: nothing written.
	useAll(t, c, 0)
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.Stat(path); again.Size() != after.Size() {
		t.Errorf("Save with nothing learned changed the file size %d → %d", after.Size(), again.Size())
	}
	// A session that only hashed racy files has nothing to write either.
	c = loadStat(t, path)
	useAll(t, c, 200)
	now := time.Now().UnixNano()
	c.Add("fresh", Stat{Ino: 5000, Mtime: now, Ctime: now}, digestOf("fresh"), nil)
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.Stat(path); again.Size() != after.Size() {
		t.Errorf("Save of racy entries only changed the file size %d → %d", after.Size(), again.Size())
	}
}

// TestStatCacheCompacts: the file is rewritten as one base segment once
// the deltas pass an eighth of the base (at least 64 entries), or when
// most of the base went unused; unused entries then drop out.
func TestStatCacheCompacts(t *testing.T) {
	t.Parallel()
	path := baseCache(t, 800)
	g := func(round, i int) (string, Stat) {
		return fmt.Sprintf("g%d-%02d", round, i), oldStat(uint64(2000 + 100*round + i))
	}
	for round := range 3 { // 3 × 40 entries: the third passes 100
		c := loadStat(t, path)
		useAll(t, c, 800)
		for r := range round {
			for i := range 40 {
				if name, st := g(r, i); !lookupOK(c, name, st) {
					t.Fatalf("round %d: Lookup(%s) missed", round, name)
				}
			}
		}
		for i := range 40 {
			name, st := g(round, i)
			c.Add(name, st, digestOf("g"), nil)
		}
		if err := c.Save(); err != nil {
			t.Fatal(err)
		}
		base, deltas, _ := segments(t, path)
		want := round + 1
		if round == 2 {
			want = 0
		}
		if len(deltas) != want {
			t.Errorf("round %d: base %d, deltas %v; want %d delta segments", round, base, deltas, want)
		}
	}
	if base, _, _ := segments(t, path); base != 920 {
		t.Errorf("base after compaction has %d entries, want 920", base)
	}
	// Most of the base unused (files deleted): rewritten without them.
	c := loadStat(t, path)
	useAll(t, c, 100)
	c.Add("h", oldStat(9000), digestOf("h"), nil)
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	if base, deltas, _ := segments(t, path); base != 101 || len(deltas) != 0 {
		t.Errorf("after a save using 100 of 920 entries: base %d, deltas %v; want 101, none", base, deltas)
	}
}

// TestStatCacheDeltaRacy: a delta's entries are judged against the time
// of the build that appended them (forged here), not the base's.
func TestStatCacheDeltaRacy(t *testing.T) {
	t.Parallel()
	recent := time.Now().Add(-time.Second).UnixNano()
	st := Stat{Dev: 1, Ino: 500, Mode: 0o100644, Size: 4, Mtime: recent, Ctime: recent}
	for _, tc := range []struct {
		written time.Time
		trusted bool
	}{
		{time.Unix(0, recent).Add(time.Second), false},             // within RacyWindow
		{time.Unix(0, recent).Add(RacyWindow + time.Second), true}, // well after
	} {
		path := baseCache(t, 100)
		delta := encodeSegment(segDelta, tc.written, []tableEntry{{rel: "recent", st: st, raw: rawDigest(digestOf("old content").Hex)}})
		if err := appendFile(path, delta); err != nil {
			t.Fatal(err)
		}
		c := loadStat(t, path)
		if _, _, ok := c.Lookup("recent", st); ok != tc.trusted {
			t.Errorf("Lookup of an entry recorded %v before its segment's build: hit %v, want %v",
				tc.written.Sub(time.Unix(0, recent)), ok, tc.trusted)
		}
		if _, _, ok := c.Lookup("f001", oldStat(1)); !ok {
			t.Errorf("Lookup of an old base entry missed")
		}
	}
}

// TestStatCacheTornTail: a segment cut short (a crash during an append)
// is ignored, the entries before it are used, and the next Save rewrites
// the file.
func TestStatCacheTornTail(t *testing.T) {
	t.Parallel()
	path := baseCache(t, 100)
	c := loadStat(t, path)
	useAll(t, c, 100)
	c.Add("new", oldStat(1000), digestOf("new"), nil)
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	info, _ := os.Stat(path)
	if err := os.Truncate(path, info.Size()-7); err != nil {
		t.Fatal(err)
	}
	c = loadStat(t, path)
	if !c.torn {
		t.Errorf("torn segment not noticed")
	}
	if _, _, ok := c.Lookup("new", oldStat(1000)); ok {
		t.Errorf("Lookup hit an entry of a torn segment")
	}
	useAll(t, c, 100)
	c.Add("newer", oldStat(1001), digestOf("newer"), nil)
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	if base, deltas, torn := segments(t, path); base != 101 || len(deltas) != 0 || torn {
		t.Errorf("after saving over a torn file: base %d, deltas %v, torn %v; want 101, none, false", base, deltas, torn)
	}
}

// TestStatCacheConcurrentAppends: two builds that loaded the same file
// both append; the file then holds what both learned.
func TestStatCacheConcurrentAppends(t *testing.T) {
	t.Parallel()
	path := baseCache(t, 100)
	a, b := loadStat(t, path), loadStat(t, path)
	useAll(t, a, 100)
	useAll(t, b, 100)
	a.Add("from-a", oldStat(1000), digestOf("a"), nil)
	b.Add("from-b", oldStat(1001), digestOf("b"), nil)
	if err := a.Save(); err != nil {
		t.Fatal(err)
	}
	if err := b.Save(); err != nil {
		t.Fatal(err)
	}
	c := loadStat(t, path)
	for name, st := range map[string]Stat{"from-a": oldStat(1000), "from-b": oldStat(1001), "f050": oldStat(50)} {
		if _, _, ok := c.Lookup(name, st); !ok {
			t.Errorf("Lookup(%s) missed after two appends", name)
		}
	}
}

// TestScanDigestsOutliveStatCache: digests a scan took from the mapped
// stat cache file stay valid after the cache is collected and unmapped.
func TestScanDigestsOutliveStatCache(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i := range 50 {
		name := filepath.Join(dir, fmt.Sprintf("f%02d", i))
		if err := os.WriteFile(name, []byte(fmt.Sprint(i)), 0o644); err != nil {
			t.Fatal(err)
		}
		past := time.Now().Add(-time.Hour)
		os.Chtimes(name, past, past)
	}
	statPath := filepath.Join(t.TempDir(), "stat")
	scan := func() []File {
		c := loadStat(t, statPath)
		ageCache(c)
		files, err := Scan(context.Background(), dir, ScanOptions{Cache: c})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Save(); err != nil {
			t.Fatal(err)
		}
		return files
	}
	scan()
	files := scan() // every digest from the mapped file
	runtime.GC()
	runtime.GC() // runs the cleanup that unmaps it
	time.Sleep(10 * time.Millisecond)
	runtime.GC()
	for i, f := range files {
		if want := digestOf(fmt.Sprint(i)); f.Digest != want {
			t.Errorf("%s: digest %s after the stat cache was released, want %s", f.Path, f.Digest, want)
		}
	}
}
