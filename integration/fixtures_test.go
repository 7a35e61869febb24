package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"minibuild/internal/testenv"
)

// Media types the fixtures use.
const (
	mtManifest     = "application/vnd.oci.image.manifest.v1+json"
	mtIndex        = "application/vnd.oci.image.index.v1+json"
	mtConfig       = "application/vnd.oci.image.config.v1+json"
	mtLayerTar     = "application/vnd.oci.image.layer.v1.tar"
	mtLayerGzip    = "application/vnd.oci.image.layer.v1.tar+gzip"
	refNameKey     = "org.opencontainers.image.ref.name"
	fixtureCreated = "2020-01-02T03:04:05Z"
)

var fixtureTime = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// tarEntry is one entry of a fixture layer: a regular file (Body), a
// directory (Dir) or a symlink (Link).
type tarEntry struct {
	Name string
	Body []byte
	Mode int64
	Dir  bool
	Link string
}

// layer is a layer blob as stored, with its media type and diff ID.
type layer struct {
	Blob      []byte
	MediaType string
	DiffID    string
}

// tarLayer is an uncompressed layer of entries, sorted by name, owned by
// 0:0 and stamped fixtureTime, so the same entries give the same digest.
func tarLayer(t *testing.T, entries ...tarEntry) layer {
	t.Helper()
	slices.SortFunc(entries, func(a, b tarEntry) int { return strings.Compare(a.Name, b.Name) })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.Name, Mode: e.Mode, ModTime: fixtureTime, Format: tar.FormatPAX}
		switch {
		case e.Dir:
			hdr.Typeflag, hdr.Name = tar.TypeDir, e.Name+"/"
		case e.Link != "":
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.Link
		default:
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(e.Body))
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.Body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	return layer{Blob: b, MediaType: mtLayerTar, DiffID: digestOf(b)}
}

// gzipLayer is l compressed (no name, no time in the header).
func gzipLayer(t *testing.T, l layer) layer {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(l.Blob); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return layer{Blob: buf.Bytes(), MediaType: mtLayerGzip, DiffID: l.DiffID}
}

// randomLayer is one file of size incompressible bytes, the same for the
// same seed.
func randomLayer(t *testing.T, seed uint64, size int) layer {
	t.Helper()
	body := make([]byte, size)
	var key [32]byte
	key[0] = byte(seed)
	rand.NewChaCha8(key).Read(body)
	return tarLayer(t, tarEntry{Name: "data.bin", Body: body})
}

// busyboxLayer is a root filesystem of the host's busybox-static: /bin/busybox
// and /bin/sh linking to it.
func busyboxLayer(t *testing.T) layer {
	t.Helper()
	bb := testenv.RequireTool(t, "busybox")
	body, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	return gzipLayer(t, tarLayer(t,
		tarEntry{Name: "bin", Dir: true, Mode: 0o755},
		tarEntry{Name: "bin/busybox", Body: body, Mode: 0o755},
		tarEntry{Name: "bin/sh", Link: "busybox", Mode: 0o777},
		tarEntry{Name: "tmp", Dir: true, Mode: 0o1777},
	))
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type image struct {
	RefName string // org.opencontainers.image.ref.name in index.json ("" for none)
	Layers  []layer
}

// writeLayout writes an OCI image layout at dir holding images and returns
// their manifest digests.
func writeLayout(t *testing.T, dir string, images ...image) []string {
	t.Helper()
	put := func(b []byte) string {
		d := digestOf(b)
		p := filepath.Join(dir, "blobs", "sha256", d[len("sha256:"):])
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	index := struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Manifests     []descriptor `json:"manifests"`
	}{2, mtIndex, []descriptor{}}
	var digests []string
	for _, img := range images {
		diffIDs := []string{}
		layers := []descriptor{}
		for _, l := range img.Layers {
			diffIDs = append(diffIDs, l.DiffID)
			layers = append(layers, descriptor{MediaType: l.MediaType, Digest: put(l.Blob), Size: int64(len(l.Blob))})
		}
		cfg := mustJSON(t, map[string]any{
			"architecture": "amd64", "os": "linux", "created": fixtureCreated,
			"config": map[string]any{"Cmd": []string{"sh"}},
			"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
		})
		manifest := mustJSON(t, map[string]any{
			"schemaVersion": 2, "mediaType": mtManifest,
			"config": descriptor{MediaType: mtConfig, Digest: put(cfg), Size: int64(len(cfg))},
			"layers": layers,
		})
		d := descriptor{MediaType: mtManifest, Digest: put(manifest), Size: int64(len(manifest))}
		if img.RefName != "" {
			d.Annotations = map[string]string{refNameKey: img.RefName}
		}
		index.Manifests = append(index.Manifests, d)
		digests = append(digests, d.Digest)
	}
	writeFile(t, filepath.Join(dir, "index.json"), mustJSON(t, index))
	writeFile(t, filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`))
	return digests
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tarDir writes a tar of dir's tree to out: an OCI archive when dir is a
// layout.
func tarDir(t *testing.T, dir, out string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: rel + "/", Mode: 0o755, ModTime: fixtureTime})
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: 0o644, Size: int64(len(b)), ModTime: fixtureTime}); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, out, buf.Bytes())
}

// layoutState lists a store's OCI layout (path → size and sha256), to
// show that a command changed nothing.
func layoutState(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	dir := filepath.Join(root, "oci")
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = digestOf(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// indexNames reads the tags of a layout's index.json (failing the test if
// it does not parse).
func indexNames(t *testing.T, layoutDir string) map[string]string {
	t.Helper()
	var idx struct {
		Manifests []descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(layoutDir, "index.json")), &idx); err != nil {
		t.Fatalf("parse %s/index.json: %v", layoutDir, err)
	}
	names := map[string]string{}
	for _, m := range idx.Manifests {
		names[m.Annotations[refNameKey]] = m.Digest
	}
	return names
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
