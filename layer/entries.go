package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Entries calls fn for every entry of the layer read from r (gzip, zstd or
// uncompressed, detected from its first bytes), in stream order, with
// whiteouts decoded: ".wh.<name>" is reported as an [Entry] for <name> with
// Whiteout set, ".wh..wh..opq" as an Entry for its directory with Opaque
// set (both with Type tar.TypeReg and no content). The io.Reader passed to
// fn reads the entry's content and is valid only during the call.
//
// Entries stops at the first error, fn's included, and returns it. A name
// that climbs out of the root is ErrUnsafePath. The stream is read to EOF;
// its digests are not checked (use [Apply] for that).
func Entries(ctx context.Context, r io.Reader, fn func(Entry, io.Reader) error) error {
	s, err := openLayer(r, 0)
	if err != nil {
		return err
	}
	defer s.close()
	tr := tar.NewReader(s.tar)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read layer entry: %w", err)
		}
		e, ok, err := entryOf(hdr)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if err := fn(e, tr); err != nil {
			return err
		}
	}
	_, err = s.finish()
	return err
}

// entryOf decodes a tar header. ok is false for entries readers skip
// (global headers, aufs metadata).
func entryOf(hdr *tar.Header) (e Entry, ok bool, err error) {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return Entry{}, false, nil
	}
	p, err := cleanName(hdr.Name)
	if err != nil {
		return Entry{}, false, err
	}
	dir, base, kind, err := parseWhiteout(p)
	if err != nil {
		return Entry{}, false, err
	}
	e = Entry{
		Path:     p,
		Type:     hdr.Typeflag,
		Mode:     hdr.Mode & 0o7777,
		UID:      hdr.Uid,
		GID:      hdr.Gid,
		Size:     hdr.Size,
		Linkname: hdr.Linkname,
		Xattrs:   paxXattrs(hdr.PAXRecords),
	}
	switch kind {
	case whiteoutMeta:
		return Entry{}, false, nil
	case whiteoutFile:
		e = Entry{Path: joinPath(dir, base), Type: tar.TypeReg, Whiteout: true}
	case whiteoutOpaque:
		e = Entry{Path: dir, Type: tar.TypeReg, Opaque: true}
	}
	if e.Type == tar.TypeLink {
		if e.Linkname, err = cleanName(hdr.Linkname); err != nil {
			return Entry{}, false, err
		}
	}
	return e, true, nil
}

// paxXattrs extracts SCHILY.xattr.* records (nil when there are none).
func paxXattrs(recs map[string]string) map[string]string {
	var x map[string]string
	for k, v := range recs {
		if name, ok := strings.CutPrefix(k, paxXattrPrefix); ok && name != "" {
			if x == nil {
				x = make(map[string]string)
			}
			x[name] = v
		}
	}
	return x
}
