package oci

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Format is an archive format [Store.Save] writes.
type Format string

// Formats of [Store.Save].
const (
	// FormatOCI is an OCI archive: a tar of an OCI image layout holding the
	// image's blobs byte for byte (`skopeo inspect oci-archive:FILE`).
	FormatOCI Format = "oci"
	// FormatDocker is a tarball `docker load` reads (manifest.json, config,
	// layers), written by go-containerregistry's tarball package.
	FormatDocker Format = "docker"
)

// saveEpoch is the mtime of every entry Save writes, so the same image
// saves to the same bytes.
var saveEpoch = time.Unix(0, 0).UTC()

// Save writes the image ref (see [Store.Resolve]) to w in format. When ref
// is a tag, the archive names the image (index.json annotations for OCI,
// RepoTags for docker). Every blob is verified as it is copied; an error
// may leave w with a partial archive, so callers write to a temp file.
// An image index can only be saved as [FormatOCI].
func (s *Store) Save(ctx context.Context, ref string, w io.Writer, format Format) error {
	d, err := s.Resolve(ref)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	tag := ""
	if n, err := parseTagName(ref); err == nil && refName(d) == n {
		tag = n
	}
	switch format {
	case FormatOCI:
		err = s.saveOCI(ctx, d, tag, w)
	case FormatDocker:
		err = s.saveDocker(d, tag, w)
	default:
		err = fmt.Errorf("format %q: %w", format, ErrUnsupported)
	}
	if err != nil {
		return fmt.Errorf("save %s: %w", ref, err)
	}
	return nil
}

func (s *Store) saveOCI(ctx context.Context, d v1.Descriptor, tag string, w io.Writer) error {
	var blobs []v1.Descriptor
	err := walkGraph(ctx, d, s.readVerified, func(b v1.Descriptor, _ blobKind, _ []byte, _ *v1.Manifest) error {
		blobs = append(blobs, b)
		return nil
	})
	if err != nil {
		return err
	}
	entry := v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest, Platform: d.Platform}
	if tag != "" {
		// Docker's and containerd's convention: ref.name is the tag only,
		// the full name goes in io.containerd.image.name.
		entry.Annotations = map[string]string{
			containerdNameAnnotation:  tag,
			ocispec.AnnotationRefName: tag[strings.LastIndexByte(tag, ':')+1:],
		}
	}
	index, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{entry}})
	if err != nil {
		return err
	}
	layout, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	if err := writeTarFile(tw, ocispec.ImageLayoutFile, layout); err != nil {
		return err
	}
	if err := writeTarFile(tw, ocispec.ImageIndexFile, index); err != nil {
		return err
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		hdr := &tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: saveEpoch}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
	}
	for _, b := range blobs {
		if err := s.writeTarBlob(ctx, tw, b); err != nil {
			return err
		}
	}
	return tw.Close()
}

func writeTarFile(tw *tar.Writer, name string, data []byte) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: saveEpoch}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

func (s *Store) writeTarBlob(ctx context.Context, tw *tar.Writer, d v1.Descriptor) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	size, err := s.blobSize(d.Digest)
	if err != nil {
		return err
	}
	if size != d.Size {
		return fmt.Errorf("blob %s: descriptor size %d, blob has %d bytes: %w", d.Digest, d.Size, size, ErrSizeMismatch)
	}
	rc, err := s.OpenBlob(d.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: "blobs/sha256/" + d.Digest.Hex, Mode: 0o644, Size: size, ModTime: saveEpoch}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.Copy(tw, rc); err != nil {
		return fmt.Errorf("copy blob %s: %w", d.Digest, err)
	}
	return nil
}

func (s *Store) saveDocker(d v1.Descriptor, tag string, w io.Writer) error {
	img, err := s.Image(d.Digest)
	if err != nil {
		return err
	}
	// A digest reference writes no RepoTags; its repository is never used.
	var ref name.Reference
	if tag != "" {
		ref, err = name.NewTag(familiarName(tag))
	} else {
		ref, err = name.NewDigest("image@" + d.Digest.String())
	}
	if err != nil {
		return err
	}
	return tarball.Write(ref, img, w)
}
