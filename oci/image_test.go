package oci

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"minibuild/oci/ocitest"
)

func TestPutImageAndImageView(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	files := map[string]string{"etc/hello": "hi\n"}
	tarBytes := ocitest.TarLayer(t, files)
	gz := ocitest.Gzip(t, tarBytes)
	// A layer stored with a Docker media type comes out OCI in the manifest.
	if err := s.WriteBlob(ctx, bytesReader(gz), ocitest.Digest(gz), int64(len(gz))); err != nil {
		t.Fatal(err)
	}
	layer := v1.Descriptor{MediaType: types.DockerLayer, Size: int64(len(gz)), Digest: ocitest.Digest(gz)}
	cfg := &v1.ConfigFile{Architecture: "amd64", OS: "linux", Created: v1.Time{Time: ocitest.Epoch},
		RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{ocitest.Digest(tarBytes)}}}
	d, err := s.PutImage(ctx, cfg, []v1.Descriptor{layer}, map[string]string{"org.example": "yes"})
	if err != nil {
		t.Fatalf("PutImage = %v", err)
	}
	img, err := s.Image(d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("validate.Image = %v", err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Layers[0].MediaType != types.OCILayer || m.Annotations["org.example"] != "yes" {
		t.Errorf("manifest = %+v, want OCI types and the annotation", m)
	}
	if got, _ := img.Digest(); got != d.Digest {
		t.Errorf("Image(%s).Digest() = %s", d.Digest, got)
	}
	// Untagged, it still resolves by digest, described from the blob.
	if got, err := s.Resolve(d.Digest.String()); err != nil || got.MediaType != types.OCIManifestSchema1 || got.Size != d.Size {
		t.Errorf("Resolve(untagged digest) = %+v, %v; want %+v", got, err, d)
	}
	// PutImage is deterministic: same inputs, same manifest.
	if d2, err := s.PutImage(ctx, cfg, []v1.Descriptor{layer}, map[string]string{"org.example": "yes"}); err != nil || d2.Digest != d.Digest {
		t.Errorf("second PutImage = %s, %v; want %s", d2.Digest, err, d.Digest)
	}
}

func TestPutImageRefusesBadInput(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	absent := v1.Descriptor{MediaType: types.OCILayer, Size: 3, Digest: ocitest.Digest([]byte("abc"))}
	one := &v1.ConfigFile{RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{absent.Digest}}}
	if _, err := s.PutImage(ctx, one, []v1.Descriptor{absent}, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("PutImage(missing layer) = %v, want ErrNotFound", err)
	}
	if _, err := s.PutImage(ctx, one, nil, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("PutImage(diff IDs ≠ layers) = %v, want ErrInvalid", err)
	}
	odd := absent
	odd.MediaType = "application/x-odd"
	if _, err := s.PutImage(ctx, one, []v1.Descriptor{odd}, nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("PutImage(odd media type) = %v, want ErrUnsupported", err)
	}
	assertNoBlobs(t, s)
}

func TestImagesAndInspect(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	d := putTestImage(t, s, map[string]string{"a": "1"})
	if err := s.Tag(ctx, "app:1", d); err != nil {
		t.Fatal(err)
	}
	infos, err := s.Images()
	if err != nil || len(infos) != 1 {
		t.Fatalf("Images() = %v, %v", infos, err)
	}
	in := infos[0]
	if in.Name != "docker.io/library/app:1" || in.Digest != d.Digest || !in.Created.Equal(ocitest.Epoch) || in.Size <= d.Size {
		t.Errorf("Images()[0] = %+v", in)
	}
	insp, err := s.Inspect("app:1")
	if err != nil {
		t.Fatal(err)
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal(insp.Config, &cfg); err != nil || cfg.Architecture != "amd64" {
		t.Errorf("Inspect config = %s, %v", insp.Config, err)
	}
	if len(insp.Names) != 1 || ocitest.Digest(insp.Manifest) != d.Digest {
		t.Errorf("Inspect = names %v, manifest digest %s; want [app:1], %s", insp.Names, ocitest.Digest(insp.Manifest), d.Digest)
	}
}
