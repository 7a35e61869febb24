// Package ocitest builds the images, layouts and archives the tests of
// package oci (and of its users) import: fixtures as code, deterministic
// unless asked for random content. Only _test.go files import it.
package ocitest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Epoch is the time stamped on everything this package builds.
var Epoch = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

// TarLayer is an uncompressed layer holding files (path → content), in
// lexical order, owned by 0:0, mode 0644, stamped [Epoch].
func TarLayer(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: int64(len(files[n])), ModTime: Epoch, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, files[n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Gzip compresses b with no name and no time in the header.
func Gzip(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Digest is the sha256 digest of b.
func Digest(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// Image is an OCI image (OCI media types throughout) with one gzip layer
// per element of layers, for linux/amd64, created at [Epoch]. The same
// arguments give the same digest.
func Image(t testing.TB, layers ...map[string]string) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	adds := make([]mutate.Addendum, 0, len(layers))
	for i, files := range layers {
		gz := Gzip(t, TarLayer(t, files))
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(gz)), nil
		}, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.Addendum{Layer: l, History: v1.History{
			Created: v1.Time{Time: Epoch}, CreatedBy: fmt.Sprintf("ocitest layer %d", i+1),
		}})
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = "amd64", "linux"
	cfg.Created = v1.Time{Time: Epoch}
	cfg.Config.Cmd = []string{"sh"}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	return img
}

// RandomImage is an image of n layers, each one file of size random
// (incompressible) bytes, with Docker media types, as go-containerregistry's
// random.Image makes it.
func RandomImage(t testing.TB, n, size int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, n)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Entry is an image of a layout and its org.opencontainers.image.ref.name
// ("" for none).
type Entry struct {
	RefName string
	Image   v1.Image
}

// WriteLayout writes an OCI image layout at dir holding entries, in order.
func WriteLayout(t testing.TB, dir string, entries ...Entry) {
	t.Helper()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		var opts []layout.Option
		if e.RefName != "" {
			opts = append(opts, layout.WithAnnotations(map[string]string{ocispec.AnnotationRefName: e.RefName}))
		}
		if err := p.AppendImage(e.Image, opts...); err != nil {
			t.Fatal(err)
		}
	}
}

// TarDir writes a tar of the tree at dir to out (an OCI archive when dir is
// a layout), entries in lexical order with paths relative to dir.
func TarDir(t testing.TB, dir, out string) {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// WriteDockerArchive writes img as a `docker save` tarball named tag, with
// go-containerregistry's tarball package (compressed layers).
func WriteDockerArchive(t testing.TB, path, tag string, img v1.Image) {
	t.Helper()
	ref, err := name.NewTag(tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(path, ref, img); err != nil {
		t.Fatal(err)
	}
}

// WriteLegacyDockerArchive writes a tarball shaped like the classic
// `docker save`: <id>/layer.tar (uncompressed), <id>/json, <id>/VERSION,
// <config hex>.json, manifest.json and repositories.
func WriteLegacyDockerArchive(t testing.TB, path, tag string, layers ...map[string]string) {
	t.Helper()
	cfg := v1.ConfigFile{Architecture: "amd64", OS: "linux", Created: v1.Time{Time: Epoch}, RootFS: v1.RootFS{Type: "layers"}}
	files := map[string][]byte{}
	var layerPaths []string
	for i, l := range layers {
		b := TarLayer(t, l)
		id := Digest(b)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, id)
		dir := fmt.Sprintf("%064x", i+1)
		files[dir+"/layer.tar"] = b
		files[dir+"/json"] = []byte(`{"id":"` + dir + `"}`)
		files[dir+"/VERSION"] = []byte("1.0")
		layerPaths = append(layerPaths, dir+"/layer.tar")
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgName := Digest(raw).Hex + ".json"
	files[cfgName] = raw
	m, err := json.Marshal(tarball.Manifest{{Config: cfgName, RepoTags: []string{tag}, Layers: layerPaths}})
	if err != nil {
		t.Fatal(err)
	}
	files["manifest.json"] = m
	files["repositories"] = []byte("{}")
	WriteTar(t, path, files)
}

// WriteTar writes files (path → content) as a tar at path, in lexical order.
func WriteTar(t testing.TB, path string, files map[string][]byte) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: int64(len(files[n])), ModTime: Epoch}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(files[n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
