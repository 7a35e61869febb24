package cache

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"
)

// The stat cache file is a sequence of segments, each used in place after
// the file is mapped: the first (the base) holds records sorted by path;
// later ones (deltas) were appended by builds that learned a few entries,
// so that a build after a small edit writes a few hundred bytes instead
// of rewriting every entry. A full rewrite (compaction) makes one base
// segment again. Each segment ends with a CRC-32C of its bytes: a
// checksum, not a digest: it detects torn or damaged files; the store
// directory is private (0700), so forgery is out of scope.
//
//	segment  header | records | strings | crc32c uint32
//	header   magic[16] | written int64 (ns) | count uint32 | size uint32 (whole
//	         segment) | kind uint32 (0 base, 1 delta) | reserved uint32
//	record   pathOff pathLen xattrOff xattrLen mode reserved (uint32 each;
//	         offsets from the segment start) | dev ino size mtime ctime
//	         (64-bit each) | sha256, 32 bytes
//	strings  paths and xattr blobs (uvarint n, then n × uvarint-framed name, value)
//
// Integers are little-endian. Every entry of a segment was recorded by
// the build that wrote the segment ("written" is when it started) and is
// trusted only if it is not racy against that time.
const (
	statMagic  = "minibuild-stat-3"
	statHeader = 40
	statRecord = 96
)

// Segment kinds.
const (
	segBase  = 0 // records sorted by path, binary-searched
	segDelta = 1 // appended records, looked up through a map
)

// statTable is one loaded segment, read in place.
type statTable struct {
	data    string // the segment without its checksum
	n       int
	written time.Time
	// used marks the records looked up in this session (a bitmap).
	used []atomic.Uint32
}

// tableEntry is one entry to write.
type tableEntry struct {
	rel    string
	st     Stat
	raw    string // sha256, 32 bytes
	xattrs string // blob form
}

func castagnoli() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) }

// openStatTable checks the segment at the start of data and wraps it; it
// returns the rest of data. data must not be modified afterwards.
func openStatTable(data string, kind uint32) (statTable, string, error) {
	if len(data) < statHeader+4 || data[:len(statMagic)] != statMagic {
		return statTable{}, "", errors.New("not a stat cache segment")
	}
	n, size := int(le32(data, 24)), int(le32(data, 28))
	if le32(data, 32) != kind {
		return statTable{}, "", errors.New("unexpected segment kind")
	}
	if size < statHeader+4 || size > len(data) {
		return statTable{}, "", errors.New("segment exceeds the file")
	}
	body := data[:size-4]
	if crc32.Checksum(unsafe.Slice(unsafe.StringData(body), len(body)), castagnoli()) != le32(data, size-4) {
		return statTable{}, "", errors.New("checksum mismatch")
	}
	strStart := statHeader + n*statRecord
	if n > len(body)/statRecord || strStart > len(body) {
		return statTable{}, "", errors.New("record table exceeds the segment")
	}
	t := statTable{data: body, n: n, written: time.Unix(0, int64(le64(data, 16))), used: make([]atomic.Uint32, (n+31)/32)}
	inStrings := func(off, length uint32) bool {
		return int(off) >= strStart && int(off)+int(length) <= len(body)
	}
	for i := range n {
		r := t.record(i)
		if !inStrings(le32(r, 0), le32(r, 4)) || !inStrings(le32(r, 8), le32(r, 12)) {
			return statTable{}, "", errors.New("record points outside the segment")
		}
		if kind == segBase && i > 0 && t.path(i) <= t.path(i-1) {
			return statTable{}, "", errors.New("records out of order")
		}
	}
	return t, data[size:], nil
}

func le32(s string, off int) uint32 {
	return uint32(s[off]) | uint32(s[off+1])<<8 | uint32(s[off+2])<<16 | uint32(s[off+3])<<24
}

func le64(s string, off int) uint64 { return uint64(le32(s, off)) | uint64(le32(s, off+4))<<32 }

func (t *statTable) record(i int) string {
	off := statHeader + i*statRecord
	return t.data[off : off+statRecord]
}

func (t *statTable) path(i int) string {
	r := t.record(i)
	off := le32(r, 0)
	return t.data[off : off+le32(r, 4)]
}

func (t *statTable) xattrBlob(i int) string {
	r := t.record(i)
	off := le32(r, 8)
	return t.data[off : off+le32(r, 12)]
}

func (t *statTable) stat(i int) Stat {
	r := t.record(i)
	return Stat{
		Mode: le32(r, 16), Dev: le64(r, 24), Ino: le64(r, 32),
		Size: int64(le64(r, 40)), Mtime: int64(le64(r, 48)), Ctime: int64(le64(r, 56)),
	}
}

// raw is the record's sha256, 32 bytes, pointing into the file: callers
// copy it (hex-encode it) before handing it out.
func (t *statTable) raw(i int) string { return t.record(i)[64:96] }

// xattrs decodes a record's xattrs (nil when it has none) into strings of
// their own: nothing handed out points into the file.
func (t *statTable) xattrs(i int) map[string]string {
	blob := t.xattrBlob(i)
	if blob == "" {
		return nil
	}
	d := &decoder{s: strings.Clone(blob)}
	x := d.xattrs()
	if d.err != nil {
		return nil
	}
	return x
}

// search returns the first index in [lo, hi) whose path, without its
// first skip bytes, is not less than key (hi if none).
func (t *statTable) search(lo, hi, skip int, key string) int {
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if t.path(m)[skip:] < key {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func (t *statTable) markUsed(i int) {
	w, bit := &t.used[i/32], uint32(1)<<(i%32)
	if w.Load()&bit == 0 {
		w.Or(bit)
	}
}

func (t *statTable) isUsed(i int) bool { return t.used[i/32].Load()&(1<<(i%32)) != 0 }

// countUsed is the number of records marked used.
func (t *statTable) countUsed() int {
	n := 0
	for i := range t.used {
		for w := t.used[i].Load(); w != 0; w &= w - 1 {
			n++
		}
	}
	return n
}

// entry returns record i as an entry to write again (its strings point
// into the file: encode them before the file is released).
func (t *statTable) entry(i int) tableEntry {
	return tableEntry{rel: t.path(i), st: t.stat(i), raw: t.raw(i), xattrs: t.xattrBlob(i)}
}

// encodeSegment writes entries (sorted by path for a base) as a segment.
func encodeSegment(kind uint32, written time.Time, entries []tableEntry) []byte {
	strStart := statHeader + len(entries)*statRecord
	size := strStart + 4
	for _, e := range entries {
		size += len(e.rel) + len(e.xattrs)
	}
	b := make([]byte, strStart, size)
	copy(b, statMagic)
	binary.LittleEndian.PutUint64(b[16:], uint64(written.UnixNano()))
	binary.LittleEndian.PutUint32(b[24:], uint32(len(entries)))
	binary.LittleEndian.PutUint32(b[28:], uint32(size))
	binary.LittleEndian.PutUint32(b[32:], kind)
	for i, e := range entries {
		r := b[statHeader+i*statRecord:]
		binary.LittleEndian.PutUint32(r[0:], uint32(len(b)))
		binary.LittleEndian.PutUint32(r[4:], uint32(len(e.rel)))
		b = append(b, e.rel...)
		binary.LittleEndian.PutUint32(r[8:], uint32(len(b)))
		binary.LittleEndian.PutUint32(r[12:], uint32(len(e.xattrs)))
		b = append(b, e.xattrs...)
		binary.LittleEndian.PutUint32(r[16:], e.st.Mode)
		binary.LittleEndian.PutUint64(r[24:], e.st.Dev)
		binary.LittleEndian.PutUint64(r[32:], e.st.Ino)
		binary.LittleEndian.PutUint64(r[40:], uint64(e.st.Size))
		binary.LittleEndian.PutUint64(r[48:], uint64(e.st.Mtime))
		binary.LittleEndian.PutUint64(r[56:], uint64(e.st.Ctime))
		copy(r[64:96], e.raw)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli()))
}

// rawDigest is the 32 bytes of a sha256 given as 64 hex digits ("" if it
// is not one).
func rawDigest(hexDigits string) string {
	var raw [32]byte
	if len(hexDigits) != 64 {
		return ""
	}
	if _, err := hex.Decode(raw[:], []byte(hexDigits)); err != nil {
		return ""
	}
	return string(raw[:])
}

// appendSortedXattrs is appendXattrs with names in order, so equal maps
// encode equally; an empty map encodes as nothing.
func appendSortedXattrs(b []byte, x map[string]string) []byte {
	if len(x) == 0 {
		return b
	}
	b = binary.AppendUvarint(b, uint64(len(x)))
	for _, k := range slices.Sorted(maps.Keys(x)) {
		b = appendUvarString(appendUvarString(b, k), x[k])
	}
	return b
}
