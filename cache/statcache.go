package cache

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

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
// be racy (its mtime or ctime within [RacyWindow] of the time the cache
// was written, or later). It is safe for concurrent use; lookups of
// loaded entries take no lock.
type StatCache struct {
	path   string
	tmpDir string // where Save writes its temp file
	log    *slog.Logger
	// written is when the loaded file's session started; loaded entries
	// are trusted only if they are not racy against it.
	written time.Time
	// session is when this value was loaded. Every stat it is given was
	// taken after that, so it is the write time Save records.
	session time.Time

	// loaded is the file read at load time, used in place: records sorted
	// by path, binary-searched (no decoding, no index to build).
	loaded statTable

	nAdded atomic.Int32 // len(added), readable without mu
	mu     sync.Mutex
	added  map[string]*statEntry // this session's entries (nil: removed)
	dirty  bool
}

// statEntry is an entry added in this session.
type statEntry struct {
	st     Stat
	hex    string // sha256, 64 hex digits
	xattrs map[string]string
}

// LoadStatCache reads the stat cache at path. A missing file gives an
// empty cache. So does a corrupt one, which is reported to the logger
// ([WithLogger]): a stat cache is only an accelerator. The error is for
// other read failures.
func LoadStatCache(path string, opts ...Option) (*StatCache, error) {
	o := makeOptions(opts)
	c := &StatCache{path: path, tmpDir: filepath.Dir(path), log: o.log, session: time.Now(), added: map[string]*statEntry{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load stat cache %s: %w", path, err)
	}
	written, table, err := openStatTable(data)
	if err != nil {
		c.log.Warn("ignoring corrupt stat cache", "path", path, "err", err)
		return c, nil
	}
	c.written, c.loaded = written, table
	return c, nil
}

// Lookup returns the digest and xattrs recorded for the file rel if st
// matches the recorded stat data exactly and the entry is not racy.
func (c *StatCache) Lookup(rel string, st Stat) (v1.Hash, map[string]string, bool) {
	return c.dir("").lookup(rel, rel, st)
}

// statDir is the run of loaded records below one directory.
type statDir struct {
	c      *StatCache
	prefix int // length of "dir/" (0 for the root)
	lo, hi int
}

// dir returns the loaded records whose path starts with rel + "/" (all
// of them for rel == "").
func (c *StatCache) dir(rel string) statDir {
	t := &c.loaded
	if rel == "" {
		return statDir{c: c, hi: t.n}
	}
	// Paths below rel sort between rel+"/" and rel+"0" ('0' follows '/').
	lo := t.search(0, t.n, 0, rel+"/")
	hi := t.search(lo, t.n, 0, rel+"0")
	return statDir{c: c, prefix: len(rel) + 1, lo: lo, hi: hi}
}

// lookup is Lookup for the entry name (rel = prefix + name) of the
// directory.
func (d statDir) lookup(name, rel string, st Stat) (v1.Hash, map[string]string, bool) {
	c := d.c
	if c.nAdded.Load() > 0 {
		c.mu.Lock()
		e, ok := c.added[rel]
		c.mu.Unlock()
		if ok { // added (or removed) in this session: that decides
			if e == nil || e.st != st {
				return v1.Hash{}, nil, false
			}
			return v1.Hash{Algorithm: "sha256", Hex: e.hex}, e.xattrs, true
		}
	}
	t := &c.loaded
	i := t.search(d.lo, d.hi, d.prefix, name)
	if i == d.hi || t.path(i)[d.prefix:] != name || t.stat(i) != st || st.racy(c.written) {
		return v1.Hash{}, nil, false
	}
	t.markUsed(i)
	return v1.Hash{Algorithm: "sha256", Hex: t.hex(i)}, t.xattrs(i), true
}

// Add records that the regular file rel, with stat data st (taken before
// its content was read), has the given sha256 digest and xattrs. An entry
// that is racy against this session's start is not kept (git smudges
// such entries): the next session hashes that file again.
func (c *StatCache) Add(rel string, st Stat, digest v1.Hash, xattrs map[string]string) {
	var e *statEntry
	if digest.Algorithm == "sha256" && len(digest.Hex) == 64 && !st.racy(c.session) {
		e = &statEntry{st: st, hex: digest.Hex, xattrs: xattrs}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dirty = true
	c.added[rel] = e
	c.nAdded.Store(int32(len(c.added)))
}

// Save writes the cache back atomically (without fsync: after a crash the
// file may be old or unreadable, never wrong) if anything was added since
// it was loaded; otherwise it does nothing. Only non-racy entries used or
// added since loading are kept, so files that were deleted or are now
// ignored drop out.
func (c *StatCache) Save() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty {
		return nil
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

// Len is the number of entries a lookup can hit.
func (c *StatCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.loaded.n
	for rel, e := range c.added {
		i := c.loaded.search(0, c.loaded.n, 0, rel)
		old := i < c.loaded.n && c.loaded.path(i) == rel
		switch {
		case e != nil && !old:
			n++
		case e == nil && old:
			n--
		}
	}
	return n
}

// encode writes the entries to keep (see Save) as a stat cache file.
// Called with c.mu held.
func (c *StatCache) encode() []byte {
	var list []tableEntry
	t := &c.loaded
	for i := range t.n {
		rel := t.path(i)
		if _, replaced := c.added[rel]; !replaced && t.isUsed(i) && !t.stat(i).racy(c.session) {
			list = append(list, tableEntry{rel: rel, st: t.stat(i), hex: t.hex(i), xattrs: t.xattrBlob(i)})
		}
	}
	for rel, e := range c.added {
		if e != nil && !e.st.racy(c.session) {
			list = append(list, tableEntry{rel: rel, st: e.st, hex: e.hex, xattrs: string(appendSortedXattrs(nil, e.xattrs))})
		}
	}
	slices.SortFunc(list, func(a, b tableEntry) int { return cmp.Compare(a.rel, b.rel) })
	return encodeStatTable(c.session, list)
}
