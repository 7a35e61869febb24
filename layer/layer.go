package layer

import (
	"errors"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// DefaultEpoch is the time every mtime is clamped to when SOURCE_DATE_EPOCH
// is not set: 1980-01-02T00:00:00Z. Zip-based tools (jar, wheel) reject
// timestamps before 1980-01-01 in local time; one day later stays valid in
// every time zone.
const DefaultEpoch int64 = 315619200

// Sentinel errors callers branch on.
var (
	// ErrUnsafePath: a tar entry, link target or whiteout would resolve
	// outside the root it is applied to.
	ErrUnsafePath = errors.New("unsafe path")
	// ErrReservedName: a real file in a directory being diffed is named
	// like an OCI whiteout (".wh.*").
	ErrReservedName = errors.New("file name reserved for whiteouts")
	// ErrDigestMismatch: the bytes read do not have the expected digest.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrTooLarge: a layer expands past ApplyOptions.MaxSize.
	ErrTooLarge = errors.New("layer too large")
	// ErrUnsupported: the operation needs Linux.
	ErrUnsupported = errors.New("unsupported on this platform")
)

// Compression is how a layer's tar stream is compressed.
type Compression string

// Compressions minibuild writes. All three are read by [Apply].
const (
	Gzip         Compression = "gzip"
	Zstd         Compression = "zstd"
	Uncompressed Compression = "none"
)

// Descriptor is what a layer is known by.
type Descriptor struct {
	MediaType        string  // OCI layer media type for the compression
	Digest           v1.Hash // sha256 of the (compressed) bytes
	Size             int64   // length of the (compressed) bytes
	DiffID           v1.Hash // sha256 of the uncompressed tar
	UncompressedSize int64   // length of the uncompressed tar
}

// DiffOptions tunes [Diff]. The zero value writes gzip with [DefaultEpoch].
type DiffOptions struct {
	Compression Compression // zero: Gzip
	// Epoch clamps mtimes: the caller passes SOURCE_DATE_EPOCH when set
	// (whole seconds are used); zero means DefaultEpoch.
	Epoch time.Time
	// Normalize also rewrites dir in place so that it equals what [Apply]
	// (in [OverlayWhiteouts] mode) would produce from the written layer:
	// times clamped, dropped xattrs removed, whiteouts re-created as plain
	// 0:0 devices, sockets removed; in the same walk. Used to turn an
	// upperdir into a snapshot without unpacking the layer again.
	Normalize bool
}

// WhiteoutMode says what [Apply] does with OCI whiteouts.
type WhiteoutMode int

const (
	// OverlayWhiteouts keeps them as overlay whiteouts (0:0 char devices,
	// trusted.overlay.opaque=y): the snapshot form, for use as an overlay
	// lowerdir. The root should be a fresh, empty directory.
	OverlayWhiteouts WhiteoutMode = iota
	// MergeWhiteouts deletes the named paths from root (opaque markers:
	// every lower child of the directory), except what the same layer
	// created: for applying layers one after another into a flat tree
	// (local output, squashing).
	MergeWhiteouts
)

// ApplyOptions tunes [Apply]. The zero value checks no digest, keeps
// whiteouts in overlay form and bounds the layer at 64 GiB uncompressed.
type ApplyOptions struct {
	Digest   v1.Hash // expected digest of the bytes read from r; zero: not checked
	DiffID   v1.Hash // expected digest of the uncompressed tar; zero: not checked
	MaxSize  int64   // bound on uncompressed bytes and on file sizes; zero: 64 GiB
	Whiteout WhiteoutMode
}

// Entry is one tar entry of a layer as [Entries] reports it.
type Entry struct {
	Path     string // clean, relative, no leading "/" or "./"
	Type     byte   // tar.Type*
	Mode     int64  // permission and special bits (tar header Mode)
	UID, GID int
	Size     int64
	Linkname string
	// Whiteout: this entry deletes Path from the layers below (".wh.<name>"
	// decoded). Opaque: Path is a directory whose lower contents are hidden
	// (".wh..wh..opq" decoded; reported on the directory's path).
	Whiteout, Opaque bool
	Xattrs           map[string]string
}

// OCI layer media types (image-spec media-types.md).
const (
	MediaTypeTar     = "application/vnd.oci.image.layer.v1.tar"
	MediaTypeTarGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
	MediaTypeTarZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
)

// ParseCompression parses a --compression value: "gzip", "zstd" or "none".
func ParseCompression(s string) (Compression, error) {
	switch c := Compression(s); c {
	case Gzip, Zstd, Uncompressed:
		return c, nil
	}
	return "", fmt.Errorf("parse compression %q: want gzip, zstd or none", s)
}

// MediaType is the OCI layer media type of a layer compressed with c. The
// zero Compression means [Gzip], as in [DiffOptions].
func (c Compression) MediaType() string {
	switch c {
	case Zstd:
		return MediaTypeTarZstd
	case Uncompressed:
		return MediaTypeTar
	default:
		return MediaTypeTarGzip
	}
}
