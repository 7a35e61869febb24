package oci

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"minibuild/oci/ocitest"
)

func TestSaveOCIRoundTrip(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	img := ocitest.Image(t, map[string]string{"a": "1"}, map[string]string{"b": "2"})
	dir := filepath.Join(t.TempDir(), "layout")
	ocitest.WriteLayout(t, dir, ocitest.Entry{RefName: "docker.io/library/app:1", Image: img})
	importOK(t, s, dir, ImportOptions{})

	var first, second bytes.Buffer
	if err := s.Save(ctx, "app:1", &first, FormatOCI); err != nil {
		t.Fatalf("Save(oci) = %v", err)
	}
	if err := s.Save(ctx, "app:1", &second, FormatOCI); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Bytes(), second.Bytes()) {
		t.Errorf("two OCI saves of one image differ")
	}
	out := filepath.Join(t.TempDir(), "app.tar")
	if err := os.WriteFile(out, first.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	other := newStore(t)
	infos := importOK(t, other, out, ImportOptions{})
	if len(infos) != 1 || infos[0].Name != "docker.io/library/app:1" || infos[0].Digest != mustDigest(t, img) {
		t.Errorf("re-import of the OCI save = %+v, want app:1 %s", infos, mustDigest(t, img))
	}
}

func TestSaveDocker(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	img := ocitest.Image(t, map[string]string{"a": "1"})
	dir := filepath.Join(t.TempDir(), "layout")
	ocitest.WriteLayout(t, dir, ocitest.Entry{RefName: "docker.io/library/app:1", Image: img})
	infos := importOK(t, s, dir, ImportOptions{})

	out := filepath.Join(t.TempDir(), "docker.tar")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, "app:1", f, FormatDocker); err != nil {
		t.Fatalf("Save(docker) = %v", err)
	}
	f.Close()
	tag, _ := name.NewTag("app:1")
	loaded, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatalf("tarball.ImageFromPath(app:1) = %v (RepoTags should name app:1)", err)
	}
	if err := validate.Image(loaded); err != nil {
		t.Errorf("validate.Image(docker save) = %v", err)
	}
	want, _ := img.ConfigName()
	if got, _ := loaded.ConfigName(); got != want {
		t.Errorf("config = %s, want %s", got, want)
	}
	// Saved by digest: no RepoTags, still loadable as the only image.
	var buf bytes.Buffer
	if err := s.Save(ctx, infos[0].Digest.String(), &buf, FormatDocker); err != nil {
		t.Fatal(err)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil || len(m) != 1 || len(m[0].RepoTags) != 0 {
		t.Errorf("manifest.json of a save by digest = %+v, %v; want one image without tags", m, err)
	}
	if err := s.Save(ctx, "app:1", &buf, Format("zip")); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Save(zip) = %v, want ErrUnsupported", err)
	}
}
