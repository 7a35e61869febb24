package cache

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// FileType is the kind of a [File].
type FileType string

// File types. Sockets are not listed: nothing can copy them into a layer.
const (
	TypeFile    FileType = "file"
	TypeDir     FileType = "dir"
	TypeSymlink FileType = "symlink"
	TypeFifo    FileType = "fifo"
	TypeChar    FileType = "char"
	TypeBlock   FileType = "block"
)

// File is one entry of an input listing: what a COPY or ADD can observe of
// a source file. Everything here is keyed by [Digest].
//
// Left out on purpose (docs/cache.md, "Input digests"):
//   - mtime, atime, ctime: layers clamp mtimes and a `touch` or a fresh
//     git checkout must not invalidate the cache; content is hashed instead.
//   - uid/gid: COPY and ADD create files as 0:0 unless --chown says
//     otherwise (and --chown is in the instruction), so source owners are
//     not observable.
//   - hardlink structure and inode numbers: COPY reproduces content and
//     metadata, which are keyed per path.
type File struct {
	// Path is slash-separated and relative to the build context root,
	// without "./" or a trailing slash.
	Path string   `json:"path"`
	Type FileType `json:"type"`
	// Mode holds the permission bits and setuid/setgid/sticky (07777).
	Mode uint32 `json:"mode"`
	// Size is the content length of a regular file; 0 for other types
	// (a directory's size is filesystem-specific and not observable).
	Size int64 `json:"size,omitempty"`
	// Digest is the sha256 of a regular file's content.
	Digest v1.Hash `json:"digest,omitzero"`
	// Linkname is a symlink's target, as stored (never followed).
	Linkname string `json:"linkname,omitempty"`
	// Rdev is the device number of a character or block device.
	Rdev uint64 `json:"rdev,omitempty"`
	// Xattrs are the extended attributes, without the host-only ones a
	// layer drops (security.selinux, trusted.overlay.*, user.overlay.*).
	Xattrs map[string]string `json:"xattrs,omitempty"`
}

// filesVersion starts the bytes [Digest] hashes.
const filesVersion = "minibuild.files.v1\n"

// Digest is the input digest of a listing: sha256 over the entries in
// byte-wise path order, each field length-framed (docs/cache.md, "Input
// digests"). A one-level Merkle hash: every file's content digest is a
// leaf. files need not be sorted; paths must be unique.
func Digest(files []File) v1.Hash {
	files = sortedFiles(files)
	h := sha256.New()
	buf := make([]byte, 0, 64<<10)
	buf = append(buf, filesVersion...)
	for i := range files {
		buf = appendFileFrame(buf, &files[i])
		if len(buf) >= 60<<10 {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	h.Write(buf)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

// appendFileFrame appends one entry: str(path) str(type) u32(mode)
// u64(size) str(digest) str(linkname) u64(rdev) u32(n) n×(str(name)
// str(value)) with xattrs in name order; str(x) = u32 length ‖ bytes; all
// integers big-endian.
func appendFileFrame(b []byte, f *File) []byte {
	b = appendFrame(b, f.Path)
	b = appendFrame(b, string(f.Type))
	b = binary.BigEndian.AppendUint32(b, f.Mode)
	b = binary.BigEndian.AppendUint64(b, uint64(f.Size))
	if f.Digest == (v1.Hash{}) {
		b = appendFrame(b, "")
	} else { // str("algorithm:hex"), without formatting it first
		b = binary.BigEndian.AppendUint32(b, uint32(len(f.Digest.Algorithm)+1+len(f.Digest.Hex)))
		b = append(append(append(b, f.Digest.Algorithm...), ':'), f.Digest.Hex...)
	}
	b = appendFrame(b, f.Linkname)
	b = binary.BigEndian.AppendUint64(b, f.Rdev)
	b = binary.BigEndian.AppendUint32(b, uint32(len(f.Xattrs)))
	if len(f.Xattrs) == 0 {
		return b
	}
	for _, k := range slices.Sorted(maps.Keys(f.Xattrs)) {
		b = appendFrame(b, k)
		b = appendFrame(b, f.Xattrs[k])
	}
	return b
}

func appendFrame(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func comparePath(a, b File) int { return strings.Compare(a.Path, b.Path) }

// sortedFiles returns files sorted by path, copying only if needed.
func sortedFiles(files []File) []File {
	if slices.IsSortedFunc(files, comparePath) {
		return files
	}
	files = slices.Clone(files)
	slices.SortStableFunc(files, comparePath)
	return files
}

// Subtrees returns the entries of a sorted listing that are one of roots
// or below one, in order and without duplicates. A root of "." or ""
// selects everything. It is how the builder cuts one COPY's sources out of
// a whole-context [Scan]. When the selection is one contiguous run of
// files, the result shares files' backing array (no copy); callers must
// not modify it.
func Subtrees(files []File, roots ...string) []File {
	var spans []span
	for _, r := range roots {
		r = strings.TrimPrefix(path.Clean("/"+r), "/")
		if r == "" {
			return files
		}
		if i, ok := slices.BinarySearchFunc(files, r, pathCmp); ok {
			spans = append(spans, span{i, i + 1})
		}
		// Descendants of r sort between r+"/" and r+"0" ('0' follows '/').
		lo, _ := slices.BinarySearchFunc(files, r+"/", pathCmp)
		hi, _ := slices.BinarySearchFunc(files, r+"0", pathCmp)
		if lo < hi {
			spans = append(spans, span{lo, hi})
		}
	}
	spans = mergeSpans(spans)
	switch len(spans) {
	case 0:
		return nil
	case 1:
		return files[spans[0].lo:spans[0].hi:spans[0].hi]
	}
	var out []File
	for _, s := range spans {
		out = append(out, files[s.lo:s.hi]...)
	}
	return out
}

// span is the index range [lo, hi).
type span struct{ lo, hi int }

// mergeSpans returns the union of spans as sorted, disjoint,
// non-adjacent ranges.
func mergeSpans(spans []span) []span {
	slices.SortFunc(spans, func(a, b span) int { return a.lo - b.lo })
	var out []span
	for _, s := range spans {
		if n := len(out); n > 0 && s.lo <= out[n-1].hi {
			out[n-1].hi = max(out[n-1].hi, s.hi)
			continue
		}
		out = append(out, s)
	}
	return out
}

func pathCmp(f File, p string) int { return strings.Compare(f.Path, p) }

// WriteListing writes a listing as text, one entry per line, for debug
// dumps of key material: type, octal mode, size, digest, quoted path, and
// for symlinks "-> target", for devices "rdev=N", then xattrs.
func WriteListing(w io.Writer, files []File) error {
	bw := bufio.NewWriter(w)
	for _, f := range sortedFiles(files) {
		d := "-"
		if f.Digest != (v1.Hash{}) {
			d = f.Digest.String()
		}
		fmt.Fprintf(bw, "%s %04o %d %s %s", f.Type, f.Mode, f.Size, d, strconv.Quote(f.Path))
		if f.Type == TypeSymlink {
			fmt.Fprintf(bw, " -> %s", strconv.Quote(f.Linkname))
		}
		if f.Rdev != 0 {
			fmt.Fprintf(bw, " rdev=%d", f.Rdev)
		}
		for _, k := range slices.Sorted(maps.Keys(f.Xattrs)) {
			fmt.Fprintf(bw, " %s=%s", k, strconv.Quote(f.Xattrs[k]))
		}
		bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write listing: %w", err)
	}
	return nil
}
