package cache

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// listingMagic starts a stored listing file.
const listingMagic = "minibuild-files-v1\n"

// PutFiles stores a listing content-addressed by its [Digest] (the same
// digest an [Input] carries), so [Explain] can later name the files that
// changed. It returns that digest. Storing a listing that is already
// there writes nothing; the write is atomic.
func (s *Store) PutFiles(files []File) (v1.Hash, error) {
	files = sortedFiles(files)
	id := Digest(files)
	p, err := s.shardPath("files", id, "")
	if err != nil {
		return v1.Hash{}, err
	}
	if _, err := os.Lstat(p); err == nil {
		return id, nil
	}
	if err := writeAtomic(s.tmpDir(), p, encodeListing(files), durable); err != nil {
		return v1.Hash{}, fmt.Errorf("put listing %s: %w", id, err)
	}
	return id, nil
}

// Files loads the listing stored under id. A listing that is missing is
// found=false; so is one that is corrupt or does not hash to id, which is
// reported to the logger.
func (s *Store) Files(id v1.Hash) (files []File, found bool, err error) {
	p, err := s.shardPath("files", id, "")
	if err != nil {
		return nil, false, err
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read listing %s: %w", id, err)
	}
	files, err = decodeListing(data)
	if err == nil && Digest(files) != id {
		err = errors.New("content does not match its digest")
	}
	if err != nil {
		s.log.Warn("ignoring corrupt listing", "id", id.String(), "path", p, "err", err)
		return nil, false, nil
	}
	return files, true, nil
}

// PruneFiles deletes stored listings that no record and no build log
// refers to, except those written in the last hour (a running build may
// have stored a listing before its record). It returns how many it
// deleted.
func (s *Store) PruneFiles(ctx context.Context) (int, error) {
	used := map[v1.Hash]bool{}
	mark := func(p Parts) {
		for _, in := range p.Inputs {
			if in.Kind == InputContext {
				used[in.Digest] = true
			}
		}
	}
	if err := s.Walk(ctx, func(r Record) error { mark(r.Parts); return nil }); err != nil {
		return 0, err
	}
	if err := s.walkBuilds(func(b Build) {
		for _, st := range b.Steps {
			mark(st.Parts)
		}
	}); err != nil {
		return 0, err
	}
	removed := 0
	err := s.walkShards(ctx, "files", func(p string, info os.FileInfo) error {
		id, err := v1.NewHash("sha256:" + info.Name())
		if err != nil || used[id] || time.Since(info.ModTime()) < staleTemp {
			return nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("delete listing %s: %w", id, err)
		}
		removed++
		return nil
	})
	return removed, err
}

// typeCode is a type's one-byte code in the listing encoding; 0 means
// the type string follows.
func typeCode(t FileType) byte {
	switch t {
	case TypeFile:
		return 'f'
	case TypeDir:
		return 'd'
	case TypeSymlink:
		return 'l'
	case TypeFifo:
		return 'p'
	case TypeChar:
		return 'c'
	case TypeBlock:
		return 'b'
	}
	return 0
}

func codeType(c byte) FileType {
	for _, t := range []FileType{TypeFile, TypeDir, TypeSymlink, TypeFifo, TypeChar, TypeBlock} {
		if typeCode(t) == c {
			return t
		}
	}
	return ""
}

// encodeListing writes the compact form of a sorted listing (paths
// prefix-compressed, integers as varints, sha256 digests as 32 raw
// bytes). Every field round-trips exactly, so the decoded listing has
// the same [Digest].
func encodeListing(files []File) []byte {
	b := make([]byte, 0, 64+len(files)*64)
	b = append(b, listingMagic...)
	b = binary.AppendUvarint(b, uint64(len(files)))
	prev := ""
	for i := range files {
		f := &files[i]
		shared := commonPrefix(prev, f.Path)
		b = binary.AppendUvarint(b, uint64(shared))
		b = appendUvarString(b, f.Path[shared:])
		prev = f.Path
		if c := typeCode(f.Type); c != 0 {
			b = append(b, c)
		} else {
			b = appendUvarString(append(b, 0), string(f.Type))
		}
		b = binary.AppendUvarint(b, uint64(f.Mode))
		b = binary.AppendVarint(b, f.Size)
		b = appendDigest(b, f.Digest)
		b = appendUvarString(b, f.Linkname)
		b = binary.AppendUvarint(b, f.Rdev)
		b = appendXattrs(b, f.Xattrs)
	}
	return b
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

func appendUvarString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendDigest writes 0 (none), 1 + 32 bytes (sha256) or 2 + string.
func appendDigest(b []byte, h v1.Hash) []byte {
	switch {
	case h == (v1.Hash{}):
		return append(b, 0)
	case h.Algorithm == "sha256" && len(h.Hex) == 64:
		if raw, err := hex.DecodeString(h.Hex); err == nil {
			return append(append(b, 1), raw...)
		}
	}
	return appendUvarString(append(b, 2), h.String())
}

// decoder reads the compact encodings of listings and stat caches. The
// first error sticks; later reads return zero values.
type decoder struct {
	s   string // the whole input, so strings are substrings, not copies
	off int
	err error
}

var errTruncated = errors.New("truncated data")

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	var v uint64
	for shift := 0; shift < 64; shift += 7 {
		if d.off >= len(d.s) {
			d.fail(errTruncated)
			return 0
		}
		c := d.s[d.off]
		d.off++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v
		}
	}
	d.fail(errors.New("varint overflows 64 bits"))
	return 0
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (d *decoder) bytes(n uint64) string {
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.s)-d.off) {
		d.fail(errTruncated)
		return ""
	}
	s := d.s[d.off : d.off+int(n)]
	d.off += int(n)
	return s
}

func (d *decoder) byte() byte {
	b := d.bytes(1)
	if b == "" {
		return 0
	}
	return b[0]
}

func (d *decoder) str() string { return d.bytes(d.uvarint()) }

func (d *decoder) digest() v1.Hash {
	switch d.byte() {
	case 0:
		return v1.Hash{}
	case 1:
		return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString([]byte(d.bytes(32)))}
	case 2:
		h, err := v1.NewHash(d.str())
		if err != nil {
			d.fail(err)
		}
		return h
	}
	d.fail(errors.New("bad digest tag"))
	return v1.Hash{}
}

func appendXattrs(b []byte, x map[string]string) []byte {
	b = binary.AppendUvarint(b, uint64(len(x)))
	for k, v := range x { // order is irrelevant: the reader builds a map
		b = appendUvarString(appendUvarString(b, k), v)
	}
	return b
}

func (d *decoder) xattrs() map[string]string {
	n := d.uvarint()
	if n == 0 || d.err != nil {
		return nil
	}
	if n > uint64(len(d.s)) {
		d.fail(errTruncated)
		return nil
	}
	x := make(map[string]string, n)
	for range n {
		k := d.str()
		x[k] = d.str()
	}
	return x
}

func decodeListing(data []byte) ([]File, error) {
	if !strings.HasPrefix(string(data), listingMagic) {
		return nil, errors.New("not a listing")
	}
	d := &decoder{s: string(data), off: len(listingMagic)}
	n := d.uvarint()
	if n > uint64(len(data)) {
		return nil, errTruncated
	}
	files := make([]File, 0, n)
	prev := ""
	for range n {
		var f File
		shared := d.uvarint()
		if shared > uint64(len(prev)) {
			d.fail(errors.New("bad path prefix"))
		}
		if d.err != nil {
			break
		}
		f.Path = prev[:shared] + d.str()
		prev = f.Path
		if c := d.byte(); c == 0 {
			f.Type = FileType(d.str())
		} else if f.Type = codeType(c); f.Type == "" {
			d.fail(fmt.Errorf("bad type code %q", c))
		}
		f.Mode = uint32(d.uvarint())
		f.Size = d.varint()
		f.Digest = d.digest()
		f.Linkname = d.str()
		f.Rdev = d.uvarint()
		f.Xattrs = d.xattrs()
		files = append(files, f)
	}
	if d.err == nil && d.off != len(d.s) {
		d.fail(errors.New("trailing data"))
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode listing: %w", d.err)
	}
	return files, nil
}
