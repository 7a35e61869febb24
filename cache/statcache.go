package cache

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// RacyWindow is how close to the cache's write time a file's mtime or
// ctime may be before its cached digest is distrusted (git's "racily
// clean" rule, widened). A file changed after its stat was recorded gets a
// timestamp at least as late as the change, minus the filesystem's
// granularity (up to 2 s on FAT, 1 s on ext3 and HFS+) and the kernel's
// coarse-clock lag (a few ms). An entry whose timestamps are older than
// the write time by more than that can therefore not be changed without
// its mtime or ctime changing too.
const RacyWindow = 3 * time.Second

// Stat is what the stat cache compares to decide a file is unchanged:
// git's stat data. Mtime and Ctime are nanoseconds since the Unix epoch.
type Stat struct {
	Dev, Ino     uint64
	Mode         uint32 // st_mode: type and permission bits
	Size         int64
	Mtime, Ctime int64
}

// racy reports whether st was (or may have been) written within
// RacyWindow of t or after it.
func (st Stat) racy(t time.Time) bool {
	limit := t.Add(-RacyWindow).UnixNano()
	return st.Mtime >= limit || st.Ctime >= limit
}

// StatCache maps a regular file's stat data to its content digest and
// xattrs, so an unchanged context is not re-read. It never returns a
// digest for a file that may have changed since it was hashed: an entry
// must match (dev, inode, mode, size, mtime, ctime) exactly and must not
// be racy (its mtime or ctime within [RacyWindow] of the time the build
// that recorded it started, or later). It is safe for concurrent use;
// lookups of loaded entries take no lock.
type StatCache struct {
	path   string
	tmpDir string // where Save writes its temp file
	log    *slog.Logger
	// session is when this value was loaded. Every stat it is given was
	// taken after that, so it is the write time Save records.
	session time.Time

	// The loaded file (statcache_file.go), used in place: the base
	// segment, binary-searched, and the delta segments appended since,
	// through a map of their latest record per path. A zero base: no
	// usable file was loaded.
	base   statTable
	deltas []statTable
	delta  map[string]deltaRef
	// torn: a delta segment did not verify (a write cut short); the next
	// Save rewrites the file rather than append after it.
	torn bool

	nAdded atomic.Int32 // len(added), readable without mu
	mu     sync.Mutex
	added  map[string]*statEntry // this session's entries (nil: removed)
	dirty  bool
}

// deltaRef is a record of a delta segment.
type deltaRef struct{ seg, i int32 }

// statEntry is an entry added in this session.
type statEntry struct {
	st     Stat
	raw    string // sha256, 32 bytes
	xattrs map[string]string
}

// LoadStatCache reads the stat cache at path. A missing file gives an
// empty cache. So does a corrupt one, which is reported to the logger
// ([WithLogger]): a stat cache is only an accelerator. The error is for
// other read failures. The file is mapped, not read: a no-op build of a
// large context touches no page of it but the ones it compares.
func LoadStatCache(path string, opts ...Option) (*StatCache, error) {
	o := makeOptions(opts)
	c := &StatCache{path: path, tmpDir: filepath.Dir(path), log: o.log, session: time.Now(), added: map[string]*statEntry{}}
	data, err := mapFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load stat cache %s: %w", path, err)
	}
	if len(data) > 0 {
		// Nothing handed out points into the mapping (lookups copy), so
		// it can go with c.
		runtime.AddCleanup(c, unmapFile, data)
	}
	if err := c.open(unsafe.String(unsafe.SliceData(data), len(data))); err != nil {
		c.base, c.deltas, c.delta, c.torn = statTable{}, nil, nil, false
		if !bytes.HasPrefix(data, []byte(statMagic[:len(statMagic)-1])) || bytes.HasPrefix(data, []byte(statMagic)) {
			c.log.Warn("ignoring corrupt stat cache", "path", path, "err", err)
		} // else: another format version, replaced by the next Save
	}
	return c, nil
}

// open wraps the segments of a loaded file.
func (c *StatCache) open(data string) error {
	base, rest, err := openStatTable(data, segBase)
	if err != nil {
		return err
	}
	c.base = base
	for rest != "" {
		t, next, err := openStatTable(rest, segDelta)
		if err != nil {
			c.torn = true
			c.log.Debug("stat cache ends with a damaged segment", "path", c.path, "err", err)
			break
		}
		if c.delta == nil {
			c.delta = map[string]deltaRef{}
		}
		for i := range t.n {
			c.delta[t.path(i)] = deltaRef{seg: int32(len(c.deltas)), i: int32(i)}
		}
		c.deltas = append(c.deltas, t)
		rest = next
	}
	return nil
}

// Lookup returns the digest and xattrs recorded for the file rel if st
// matches the recorded stat data exactly and the entry is not racy.
func (c *StatCache) Lookup(rel string, st Stat) (v1.Hash, map[string]string, bool) {
	raw, x, ok := c.dir("").lookup(rel, rel, st)
	if !ok {
		return v1.Hash{}, nil, false
	}
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString([]byte(raw))}, x, true
}

// statDir is the run of base records below one directory.
type statDir struct {
	c      *StatCache
	prefix int // length of "dir/" (0 for the root)
	lo, hi int
}

// dir returns the base records whose path starts with rel + "/" (all of
// them for rel == "").
func (c *StatCache) dir(rel string) statDir {
	t := &c.base
	if rel == "" {
		return statDir{c: c, hi: t.n}
	}
	// Paths below rel sort between rel+"/" and rel+"0" ('0' follows '/').
	lo := t.search(0, t.n, 0, rel+"/")
	hi := t.search(lo, t.n, 0, rel+"0")
	return statDir{c: c, prefix: len(rel) + 1, lo: lo, hi: hi}
}

// lookup is Lookup for the entry name (rel = prefix + name) of the
// directory. raw is the sha256 (32 bytes); it may point into the mapped
// file, so callers copy it before handing it out.
func (d statDir) lookup(name, rel string, st Stat) (raw string, x map[string]string, ok bool) {
	c := d.c
	if c.nAdded.Load() > 0 {
		c.mu.Lock()
		e, ok := c.added[rel]
		c.mu.Unlock()
		if ok { // added (or removed) in this session: that decides
			if e == nil || e.st != st {
				return "", nil, false
			}
			return e.raw, e.xattrs, true
		}
	}
	// Each record is a fact of its own (this stat data had this digest,
	// recorded at that time): a delta's or the base's may match.
	if ref, ok := c.delta[rel]; ok {
		t, i := &c.deltas[ref.seg], int(ref.i)
		if t.stat(i) == st && !st.racy(t.written) {
			t.markUsed(i)
			return t.raw(i), t.xattrs(i), true
		}
	}
	t := &c.base
	i := t.search(d.lo, d.hi, d.prefix, name)
	if i == d.hi || t.path(i)[d.prefix:] != name || t.stat(i) != st || st.racy(t.written) {
		return "", nil, false
	}
	t.markUsed(i)
	return t.raw(i), t.xattrs(i), true
}

// Add records that the regular file rel, with stat data st (taken before
// its content was read), has the given sha256 digest and xattrs. An entry
// that is racy against this session's start is not kept (git smudges
// such entries): the next session hashes that file again.
func (c *StatCache) Add(rel string, st Stat, digest v1.Hash, xattrs map[string]string) {
	var e *statEntry
	if raw := rawDigest(digest.Hex); digest.Algorithm == "sha256" && raw != "" && !st.racy(c.session) {
		e = &statEntry{st: st, raw: raw, xattrs: xattrs}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dirty = true
	c.added[rel] = e
	c.nAdded.Store(int32(len(c.added)))
}

// Save writes back what this session learned, if anything (without
// fsync: after a crash the file may be old or unreadable, never wrong).
// Usually it appends one small segment with the entries added since
// loading. When the deltas grow past an eighth of the base, when most of
// the base went unused, or when the file was missing or damaged, it
// rewrites the file instead, atomically, with only the non-racy entries
// used or added since loading, so that files deleted or now ignored drop
// out. Saving twice appends nothing new.
func (c *StatCache) Save() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty {
		return nil
	}
	fresh := c.freshEntries()
	if c.appendable(len(fresh)) {
		if len(fresh) == 0 {
			c.dirty = false
			return nil
		}
		err := appendFile(c.path, encodeSegment(segDelta, c.session, fresh))
		if err == nil {
			c.dirty = false
			return nil
		}
		c.log.Debug("append to stat cache; rewriting it", "path", c.path, "err", err)
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return fmt.Errorf("save stat cache %s: %w", c.path, err)
	}
	if err := writeAtomic(c.tmpDir, c.path, c.encode(), bestEffort); err != nil {
		return fmt.Errorf("save stat cache: %w", err)
	}
	c.dirty = false
	return nil
}

// appendable says whether Save may append n entries to the loaded file
// rather than rewrite it. Called with c.mu held.
func (c *StatCache) appendable(n int) bool {
	if c.base.n == 0 || c.torn {
		return false
	}
	deltas := n
	for i := range c.deltas {
		deltas += c.deltas[i].n
	}
	return deltas <= max(64, c.base.n/8) && 2*c.base.countUsed() > c.base.n
}

// freshEntries are the entries added in this session that Save keeps,
// sorted by path. Called with c.mu held.
func (c *StatCache) freshEntries() []tableEntry {
	var list []tableEntry
	for rel, e := range c.added {
		if e != nil && !e.st.racy(c.session) {
			list = append(list, tableEntry{rel: rel, st: e.st, raw: e.raw, xattrs: string(appendSortedXattrs(nil, e.xattrs))})
		}
	}
	slices.SortFunc(list, func(a, b tableEntry) int { return cmp.Compare(a.rel, b.rel) })
	return list
}

// Len is the number of paths a lookup can hit.
func (c *StatCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	t := &c.base
	for i := range t.n {
		rel := t.path(i)
		if _, ok := c.added[rel]; ok {
			continue
		}
		if _, ok := c.delta[rel]; !ok {
			n++
		}
	}
	for rel := range c.delta {
		if _, ok := c.added[rel]; !ok {
			n++
		}
	}
	for _, e := range c.added {
		if e != nil {
			n++
		}
	}
	return n
}

// encode writes the entries to keep (see Save) as a file of one base
// segment. The base is sorted already; the entries of deltas and of this
// session are merged into it. Called with c.mu held.
func (c *StatCache) encode() []byte {
	keep := func(rel string, st Stat) bool {
		_, replaced := c.added[rel]
		return !replaced && !st.racy(c.session)
	}
	// Later sources win: deltas in order, then this session.
	extra := c.freshEntries()
	byPath := make(map[string]bool, len(extra))
	for _, e := range extra {
		byPath[e.rel] = true
	}
	for s := len(c.deltas) - 1; s >= 0; s-- {
		t := &c.deltas[s]
		for i := range t.n {
			if rel := t.path(i); t.isUsed(i) && !byPath[rel] && keep(rel, t.stat(i)) {
				byPath[rel] = true
				extra = append(extra, t.entry(i))
			}
		}
	}
	slices.SortFunc(extra, func(a, b tableEntry) int { return cmp.Compare(a.rel, b.rel) })
	t := &c.base
	list := make([]tableEntry, 0, t.n+len(extra))
	j := 0
	for i := range t.n {
		rel := t.path(i)
		for ; j < len(extra) && extra[j].rel < rel; j++ {
			list = append(list, extra[j])
		}
		if t.isUsed(i) && !byPath[rel] && keep(rel, t.stat(i)) {
			list = append(list, t.entry(i))
		}
	}
	list = append(list, extra[j:]...)
	return encodeSegment(segBase, c.session, list)
}

// appendFile appends data to the existing file path in one write.
// Concurrent appenders do not interleave within a write on a local
// filesystem; a torn segment fails its checksum and ends the file's
// usable part.
func appendFile(path string, data []byte) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	_, err = f.Write(data)
	return err
}
