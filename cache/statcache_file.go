package cache

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"maps"
	"slices"
	"sync/atomic"
	"time"
	"unsafe"
)

// The stat cache file is used in place after one read: a header, fixed
// size records sorted by path, a string area, and a CRC-32C of all of it.
// A checksum, not a digest: it detects torn or damaged files; the store
// directory is private (0700), so forgery is out of scope.
//
//	header  magic[16] | written int64 (ns) | count uint32 | reserved uint32
//	record  pathOff pathLen xattrOff xattrLen mode reserved (uint32 each)
//	        dev ino size mtime ctime (64-bit each) | sha256 as 64 hex digits
//	strings paths and xattr blobs (uvarint n, then n × uvarint-framed name, value)
//	trailer crc32c uint32
//
// Integers are little-endian. The digest is stored as hex so a hit hands
// out a substring of the file instead of encoding one.
const (
	statMagic  = "minibuild-stat-2"
	statHeader = 32
	statRecord = 128
)

// statTable is a loaded stat cache file, read in place.
type statTable struct {
	data string // the whole file; strings handed out point into it
	n    int
	// used marks the records looked up in this session (a bitmap).
	used []atomic.Uint32
}

// tableEntry is one entry to write.
type tableEntry struct {
	rel    string
	st     Stat
	hex    string
	xattrs string // blob form
}

func castagnoli() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) }

// openStatTable checks a stat cache file and wraps it. data must not be
// modified afterwards.
func openStatTable(data []byte) (time.Time, statTable, error) {
	if len(data) < statHeader+4 || string(data[:len(statMagic)]) != statMagic {
		return time.Time{}, statTable{}, errors.New("not a stat cache")
	}
	body := data[:len(data)-4]
	if crc32.Checksum(body, castagnoli()) != binary.LittleEndian.Uint32(data[len(body):]) {
		return time.Time{}, statTable{}, errors.New("checksum mismatch")
	}
	written := time.Unix(0, int64(binary.LittleEndian.Uint64(data[16:])))
	n := int(binary.LittleEndian.Uint32(data[24:]))
	strStart := statHeader + n*statRecord
	if n > len(body)/statRecord || strStart > len(body) {
		return time.Time{}, statTable{}, errors.New("record table exceeds the file")
	}
	t := statTable{data: unsafe.String(&data[0], len(body)), n: n, used: make([]atomic.Uint32, (n+31)/32)}
	inStrings := func(off, length uint32) bool {
		return int(off) >= strStart && int(off)+int(length) <= len(body)
	}
	for i := range n {
		r := t.record(i)
		if !inStrings(le32(r, 0), le32(r, 4)) || !inStrings(le32(r, 8), le32(r, 12)) {
			return time.Time{}, statTable{}, errors.New("record points outside the file")
		}
		if i > 0 && t.path(i) <= t.path(i-1) {
			return time.Time{}, statTable{}, errors.New("records out of order")
		}
	}
	return written, t, nil
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

func (t *statTable) hex(i int) string { return t.record(i)[64:128] }

// xattrs decodes a record's xattrs (nil when it has none).
func (t *statTable) xattrs(i int) map[string]string {
	blob := t.xattrBlob(i)
	if blob == "" {
		return nil
	}
	d := &decoder{s: blob}
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

// encodeStatTable writes entries (sorted by path) as a stat cache file.
func encodeStatTable(written time.Time, entries []tableEntry) []byte {
	strStart := statHeader + len(entries)*statRecord
	size := strStart + 4
	for _, e := range entries {
		size += len(e.rel) + len(e.xattrs)
	}
	b := make([]byte, strStart, size)
	copy(b, statMagic)
	binary.LittleEndian.PutUint64(b[16:], uint64(written.UnixNano()))
	binary.LittleEndian.PutUint32(b[24:], uint32(len(entries)))
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
		copy(r[64:128], e.hex)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli()))
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
