package cache

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
// be racy (its mtime or ctime within [RacyWindow] of the time the cache
// was written, or later). It is safe for concurrent use; lookups of
// loaded entries take no lock.
type StatCache struct {
	path string
	log  *slog.Logger
	// written is when the loaded file's session started; loaded entries
	// are trusted only if they are not racy against it.
	written time.Time
	// session is when this value was loaded. Every stat it is given was
	// taken after that, so it is the write time Save records.
	session time.Time

	// loaded, byIno and byPath are immutable after LoadStatCache. Loaded
	// entries are found by inode (an integer key hashes and compares much
	// faster than a path), and by path when inodes repeat (hardlinks,
	// several filesystems).
	loaded []statEntry
	byIno  map[uint64]int32
	byPath map[string]int32

	nAdded atomic.Int32 // len(added), readable without mu
	mu     sync.Mutex
	added  map[string]*statEntry // this session's entries (nil: removed)
	dirty  bool
}

type statEntry struct {
	rel    string
	st     Stat
	hex    string // sha256, 64 hex digits
	xattrs map[string]string
	// used is set when the entry was looked up or added in this session;
	// Save keeps only used entries, dropping files that went away.
	used atomic.Bool
}

// statMagic starts a stat cache file; a CRC-32C of everything before it
// ends it. A checksum, not a digest: it detects torn or damaged files, and
// the store directory is private (0700), so forgery is not in scope.
const statMagic = "minibuild-statcache-v1\n"

// LoadStatCache reads the stat cache at path. A missing file gives an
// empty cache. So does a corrupt one, which is reported to the logger
// ([WithLogger]): a stat cache is only an accelerator. The error is for
// other read failures.
func LoadStatCache(path string, opts ...Option) (*StatCache, error) {
	o := makeOptions(opts)
	c := &StatCache{path: path, log: o.log, session: time.Now(), added: map[string]*statEntry{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load stat cache %s: %w", path, err)
	}
	written, entries, err := decodeStatCache(data)
	if err != nil {
		c.log.Warn("ignoring corrupt stat cache", "path", path, "err", err)
		return c, nil
	}
	c.written, c.loaded = written, entries
	c.byIno = make(map[uint64]int32, len(entries))
	c.byPath = map[string]int32{}
	for i := range entries {
		if _, dup := c.byIno[entries[i].st.Ino]; dup {
			c.byPath[entries[i].rel] = int32(i)
		} else {
			c.byIno[entries[i].st.Ino] = int32(i)
		}
	}
	return c, nil
}

// Lookup returns the digest and xattrs recorded for the file rel if st
// matches the recorded stat data exactly and the entry is not racy.
func (c *StatCache) Lookup(rel string, st Stat) (v1.Hash, map[string]string, bool) {
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
	e := c.loadedEntry(rel, st.Ino)
	if e == nil || e.st != st || st.racy(c.written) {
		return v1.Hash{}, nil, false
	}
	if !e.used.Load() {
		e.used.Store(true)
	}
	return v1.Hash{Algorithm: "sha256", Hex: e.hex}, e.xattrs, true
}

// loadedEntry finds the loaded entry for rel, trying its inode first.
func (c *StatCache) loadedEntry(rel string, ino uint64) *statEntry {
	if i, ok := c.byIno[ino]; ok && c.loaded[i].rel == rel {
		return &c.loaded[i]
	}
	if i, ok := c.byPath[rel]; ok {
		return &c.loaded[i]
	}
	return nil
}

// Add records that the regular file rel, with stat data st (taken before
// its content was read), has the given sha256 digest and xattrs. An entry
// that is racy against this session's start is not kept (git smudges
// such entries): the next session hashes that file again.
func (c *StatCache) Add(rel string, st Stat, digest v1.Hash, xattrs map[string]string) {
	var e *statEntry
	if digest.Algorithm == "sha256" && len(digest.Hex) == 64 && !st.racy(c.session) {
		e = &statEntry{rel: rel, st: st, hex: digest.Hex, xattrs: xattrs}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dirty = true
	c.added[rel] = e
	c.nAdded.Store(int32(len(c.added)))
}

// Save writes the cache back atomically if anything was added since it
// was loaded; otherwise it does nothing. Only entries used or added since
// loading are kept, so files that were deleted or are now ignored drop
// out.
func (c *StatCache) Save() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return fmt.Errorf("save stat cache %s: %w", c.path, err)
	}
	if err := writeAtomic(filepath.Dir(c.path), c.path, c.encode()); err != nil {
		return fmt.Errorf("save stat cache: %w", err)
	}
	c.dirty = false
	return nil
}

// Len is the number of entries a lookup can hit.
func (c *StatCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.loaded)
	if len(c.added) > 0 {
		loaded := make(map[string]bool, len(c.loaded))
		for i := range c.loaded {
			loaded[c.loaded[i].rel] = true
		}
		for rel, e := range c.added {
			switch {
			case e != nil && !loaded[rel]:
				n++
			case e == nil && loaded[rel]:
				n--
			}
		}
	}
	return n
}

// encode writes the file form: magic, session start (int64 ns, big
// endian), entry count, entries sorted by path (path; dev, inode, mode,
// size, mtime, ctime as varints; the digest as 64 hex digits, so a lookup
// hands out a substring of the file instead of encoding; xattrs), then a
// CRC-32C of all of it. Racy entries are left out. Called with c.mu held.
func (c *StatCache) encode() []byte {
	list := make([]*statEntry, 0, len(c.loaded)+len(c.added))
	for i := range c.loaded {
		e := &c.loaded[i]
		if _, replaced := c.added[e.rel]; !replaced && e.used.Load() && !e.st.racy(c.session) {
			list = append(list, e)
		}
	}
	for _, e := range c.added {
		if e != nil && !e.st.racy(c.session) {
			list = append(list, e)
		}
	}
	slices.SortFunc(list, func(a, b *statEntry) int { return cmp.Compare(a.rel, b.rel) })
	b := make([]byte, 0, 64+len(list)*128)
	b = append(b, statMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.session.UnixNano()))
	b = binary.AppendUvarint(b, uint64(len(list)))
	for _, e := range list {
		b = appendUvarString(b, e.rel)
		b = binary.AppendUvarint(b, e.st.Dev)
		b = binary.AppendUvarint(b, e.st.Ino)
		b = binary.AppendUvarint(b, uint64(e.st.Mode))
		b = binary.AppendVarint(b, e.st.Size)
		b = binary.AppendVarint(b, e.st.Mtime)
		b = binary.AppendVarint(b, e.st.Ctime)
		b = append(b, e.hex...)
		b = appendXattrs(b, e.xattrs)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli()))
}

// castagnoli is the CRC-32C table (hardware accelerated on amd64/arm64).
func castagnoli() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) }

func decodeStatCache(data []byte) (time.Time, []statEntry, error) {
	if len(data) < len(statMagic)+8+4 || !strings.HasPrefix(string(data), statMagic) {
		return time.Time{}, nil, errors.New("not a stat cache")
	}
	body := data[:len(data)-4]
	if crc32.Checksum(body, castagnoli()) != binary.BigEndian.Uint32(data[len(body):]) {
		return time.Time{}, nil, errors.New("checksum mismatch")
	}
	written := time.Unix(0, int64(binary.BigEndian.Uint64(body[len(statMagic):])))
	// The entries' strings point into data, which nothing writes again:
	// no copy of the whole file.
	d := &decoder{s: unsafe.String(&body[0], len(body)), off: len(statMagic) + 8}
	n := d.uvarint()
	if n > uint64(len(body)) {
		return time.Time{}, nil, errTruncated
	}
	entries := make([]statEntry, n)
	for i := range entries {
		e := &entries[i]
		e.rel = d.str()
		e.st.Dev = d.uvarint()
		e.st.Ino = d.uvarint()
		e.st.Mode = uint32(d.uvarint())
		e.st.Size = d.varint()
		e.st.Mtime = d.varint()
		e.st.Ctime = d.varint()
		e.hex = d.bytes(64)
		e.xattrs = d.xattrs()
	}
	if d.err == nil && d.off != len(d.s) {
		d.fail(errors.New("trailing data"))
	}
	if d.err != nil {
		return time.Time{}, nil, d.err
	}
	return written, entries, nil
}
