package oci

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"minibuild/oci/ocitest"
)

func mustDigest(t *testing.T, img interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func importOK(t *testing.T, s *Store, path string, opts ImportOptions) []ImageInfo {
	t.Helper()
	infos, err := s.Import(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Import(%s) = %v", path, err)
	}
	return infos
}

func TestImportLayoutKeepsDigest(t *testing.T) {
	t.Parallel()
	img := ocitest.Image(t, map[string]string{"bin/sh": "#!", "etc/os-release": "test"}, map[string]string{"app": "x"})
	dir := filepath.Join(t.TempDir(), "layout")
	ocitest.WriteLayout(t, dir,
		ocitest.Entry{RefName: "example.com/team/app:1.0", Image: img},
		ocitest.Entry{RefName: "latest", Image: img})
	s := newStore(t)
	infos := importOK(t, s, dir, ImportOptions{})
	want := mustDigest(t, img)
	if len(infos) != 1 || infos[0].Name != "example.com/team/app:1.0" || infos[0].Digest != want {
		t.Fatalf("Import = %+v, want one image example.com/team/app:1.0 %s", infos, want)
	}
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	stored, err := os.ReadFile(s.blobPath(want))
	if err != nil || string(stored) != string(raw) {
		t.Errorf("stored manifest differs from the layout's: %v", err)
	}
	got, err := s.Image(want)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(got); err != nil {
		t.Errorf("validate.Image(imported) = %v", err)
	}
	// Importing again changes nothing.
	before := ocitest.Tree(t, s.LayoutPath())
	importOK(t, s, dir, ImportOptions{})
	if diff := cmp.Diff(before, ocitest.Tree(t, s.LayoutPath())); diff != "" {
		t.Errorf("re-import changed the store (-before +after):\n%s", diff)
	}
}

func TestImportBareTagIsUntaggedUnlessNamed(t *testing.T) {
	t.Parallel()
	img := ocitest.Image(t, map[string]string{"a": "1"})
	dir := filepath.Join(t.TempDir(), "layout")
	ocitest.WriteLayout(t, dir, ocitest.Entry{RefName: "latest", Image: img})
	s := newStore(t)
	infos := importOK(t, s, dir, ImportOptions{})
	if len(infos) != 1 || infos[0].Name != "" {
		t.Errorf("Import(ref.name latest) = %+v, want one untagged image", infos)
	}
	infos = importOK(t, s, dir, ImportOptions{Tag: "busybox"})
	if len(infos) != 1 || infos[0].Name != "docker.io/library/busybox:latest" {
		t.Errorf("Import(-t busybox) = %+v, want docker.io/library/busybox:latest", infos)
	}
	all, _ := s.Images()
	if len(all) != 1 {
		t.Errorf("Images() = %+v, want the untagged entry replaced by the tag", all)
	}
}

func TestImportArchives(t *testing.T) {
	t.Parallel()
	ociImg := ocitest.Image(t, map[string]string{"a": "1"})
	rnd := ocitest.RandomImage(t, 2, 1024)
	tmp := t.TempDir()
	layoutDir := filepath.Join(tmp, "layout")
	ocitest.WriteLayout(t, layoutDir, ocitest.Entry{RefName: "docker.io/library/oci:1", Image: ociImg})
	ociTar := filepath.Join(tmp, "oci.tar")
	ocitest.TarDir(t, layoutDir, ociTar)
	dockerTar := filepath.Join(tmp, "docker.tar")
	ocitest.WriteDockerArchive(t, dockerTar, "rand:v1", rnd)
	dockerGz := filepath.Join(tmp, "docker.tar.gz")
	if err := os.WriteFile(dockerGz, ocitest.Gzip(t, mustRead(t, dockerTar)), 0o644); err != nil {
		t.Fatal(err)
	}
	legacy := filepath.Join(tmp, "legacy.tar")
	ocitest.WriteLegacyDockerArchive(t, legacy, "old/app:2", map[string]string{"x": "1"}, map[string]string{"y": "2"})

	tests := []struct {
		name, path, wantName string
		wantDigest           v1.Hash // zero: not known in advance
		wantLayerType        types.MediaType
	}{
		{"oci archive", ociTar, "docker.io/library/oci:1", mustDigest(t, ociImg), types.OCILayer},
		{"docker save", dockerTar, "docker.io/library/rand:v1", v1.Hash{}, types.DockerLayer},
		{"docker save gzip", dockerGz, "docker.io/library/rand:v1", v1.Hash{}, types.DockerLayer},
		{"legacy docker save", legacy, "docker.io/old/app:2", v1.Hash{}, types.DockerUncompressedLayer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			infos := importOK(t, s, tc.path, ImportOptions{})
			if len(infos) != 1 || infos[0].Name != tc.wantName {
				t.Fatalf("Import = %+v, want %s", infos, tc.wantName)
			}
			if tc.wantDigest != (v1.Hash{}) && infos[0].Digest != tc.wantDigest {
				t.Errorf("digest = %s, want %s", infos[0].Digest, tc.wantDigest)
			}
			img, err := s.Image(infos[0].Digest)
			if err != nil {
				t.Fatal(err)
			}
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range m.Layers {
				if l.MediaType != tc.wantLayerType {
					t.Errorf("layer media type = %s, want %s", l.MediaType, tc.wantLayerType)
				}
			}
			if tc.wantLayerType == types.DockerUncompressedLayer {
				return // validate.Image assumes compressed layers
			}
			if err := validate.Image(img); err != nil {
				t.Errorf("validate.Image = %v", err)
			}
		})
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestImportIndex(t *testing.T) {
	t.Parallel()
	idx, err := random.Index(512, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{ocispec.AnnotationRefName: "multi/arch:1"})); err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	infos := importOK(t, s, dir, ImportOptions{})
	if len(infos) != 1 || infos[0].Digest != mustDigest(t, idx) || !isIndexType(infos[0].MediaType) {
		t.Fatalf("Import(index) = %+v", infos)
	}
	if _, err := s.Image(infos[0].Digest); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Image(index) = %v, want ErrUnsupported", err)
	}
	r, err := s.Fsck(context.Background())
	if err != nil || !r.OK() || r.Blobs != 1+2*3 {
		t.Errorf("Fsck = %+v, %v; want OK with 7 blobs", r, err)
	}
}

func TestImportTagNeedsOneImage(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "layout")
	ocitest.WriteLayout(t, dir,
		ocitest.Entry{RefName: "a:1", Image: ocitest.Image(t, map[string]string{"a": "1"})},
		ocitest.Entry{RefName: "b:1", Image: ocitest.Image(t, map[string]string{"b": "1"})})
	s := newStore(t)
	if _, err := s.Import(context.Background(), dir, ImportOptions{Tag: "one"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Import(2 images, -t) = %v, want ErrInvalid", err)
	}
	assertNoBlobs(t, s)
}

// badLayout writes a one-image layout and lets change break it; it returns
// the layout dir and the image's manifest.
func badLayout(t *testing.T, change func(dir string, m *v1.Manifest)) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	img := ocitest.Image(t, map[string]string{"a": "1"}, map[string]string{"b": "2"})
	ocitest.WriteLayout(t, dir, ocitest.Entry{RefName: "docker.io/library/bad:1", Image: img})
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	change(dir, m)
	return dir
}

// rewriteManifest replaces the layout's manifest with m (a new blob) in
// index.json.
func rewriteManifest(t *testing.T, dir string, m *v1.Manifest) {
	t.Helper()
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	h := ocitest.Digest(raw)
	if err := os.WriteFile(filepath.Join(dir, "blobs/sha256", h.Hex), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(mustRead(t, filepath.Join(dir, "index.json")), &idx); err != nil {
		t.Fatal(err)
	}
	idx.Manifests[0].Digest, idx.Manifests[0].Size = h, int64(len(raw))
	b, _ := json.Marshal(idx)
	if err := os.WriteFile(filepath.Join(dir, "index.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func blobFile(dir string, h v1.Hash) string { return filepath.Join(dir, "blobs", h.Algorithm, h.Hex) }

func TestImportBadInputAddsNothing(t *testing.T) {
	t.Parallel()
	type bad struct {
		name    string
		path    func(t *testing.T) string
		err     error
		mention func(t *testing.T, path string) string // what the error must name
	}
	var layer2 v1.Hash
	tests := []bad{
		{"missing blob", func(t *testing.T) string {
			return badLayout(t, func(dir string, m *v1.Manifest) {
				layer2 = m.Layers[1].Digest
				os.Remove(blobFile(dir, m.Layers[1].Digest))
			})
		}, ErrNotFound, func(*testing.T, string) string { return layer2.String() }},
		{"wrong digest", func(t *testing.T) string {
			return badLayout(t, func(dir string, m *v1.Manifest) {
				p := blobFile(dir, m.Layers[0].Digest)
				b := mustRead(t, p)
				b[len(b)-1] ^= 0xff
				os.WriteFile(p, b, 0o644)
			})
		}, ErrDigestMismatch, nil},
		{"unknown layer media type", func(t *testing.T) string {
			return badLayout(t, func(dir string, m *v1.Manifest) {
				m.Layers[1].MediaType = "application/x-mystery"
				rewriteManifest(t, dir, m)
			})
		}, ErrUnsupported, func(*testing.T, string) string { return "application/x-mystery" }},
		{"unknown manifest media type", func(t *testing.T) string {
			return badLayout(t, func(dir string, m *v1.Manifest) {
				p := filepath.Join(dir, "index.json")
				os.WriteFile(p, []byte(strings.Replace(string(mustRead(t, p)), string(types.OCIManifestSchema1), "application/x-new-manifest", 1)), 0o644)
			})
		}, ErrUnsupported, func(*testing.T, string) string { return "application/x-new-manifest" }},
		{"truncated archive", func(t *testing.T) string {
			dir := badLayout(t, func(string, *v1.Manifest) {})
			p := filepath.Join(t.TempDir(), "a.tar")
			ocitest.TarDir(t, dir, p)
			b := mustRead(t, p)
			os.WriteFile(p, b[:len(b)/2+100], 0o644)
			return p
		}, nil, nil},
		{"legacy docker save with wrong diff ID", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "legacy.tar")
			ocitest.WriteLegacyDockerArchive(t, p, "x:1", map[string]string{"a": "1"})
			return corruptLegacyLayer(t, p)
		}, ErrDigestMismatch, nil},
		{"empty tar", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "empty.tar")
			ocitest.WriteTar(t, p, map[string][]byte{"README": []byte("hi")})
			return p
		}, ErrUnsupported, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			// A store with content, so "unchanged" means something.
			good := filepath.Join(t.TempDir(), "good")
			ocitest.WriteLayout(t, good, ocitest.Entry{RefName: "docker.io/library/good:1", Image: ocitest.Image(t, map[string]string{"g": "1"})})
			importOK(t, s, good, ImportOptions{})
			before := ocitest.Tree(t, s.LayoutPath())

			path := tc.path(t)
			_, err := s.Import(context.Background(), path, ImportOptions{Tag: "new"})
			if err == nil {
				t.Fatalf("Import(%s) succeeded", tc.name)
			}
			t.Logf("Import: %v", err)
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("Import = %v, want %v", err, tc.err)
			}
			if tc.mention != nil && !strings.Contains(err.Error(), tc.mention(t, path)) {
				t.Errorf("Import = %v, want it to name %s", err, tc.mention(t, path))
			}
			if diff := cmp.Diff(before, ocitest.Tree(t, s.LayoutPath())); diff != "" {
				t.Errorf("failed import changed the store (-before +after):\n%s", diff)
			}
			assertNoIngest(t, s)
		})
	}
}

// corruptLegacyLayer rewrites a legacy docker save tarball so that the
// first layer's content no longer matches its diff ID.
func corruptLegacyLayer(t *testing.T, p string) string {
	t.Helper()
	files := map[string][]byte{}
	readTar(t, p, files)
	for n := range files {
		if strings.HasSuffix(n, "/layer.tar") {
			files[n] = ocitest.TarLayer(t, map[string]string{"a": "tampered"})
			break
		}
	}
	out := filepath.Join(t.TempDir(), "tampered.tar")
	ocitest.WriteTar(t, out, files)
	return out
}

func readTar(t *testing.T, p string, files map[string][]byte) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[hdr.Name] = b
	}
}
