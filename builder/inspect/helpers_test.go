package inspect

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"minibuild/oci"
)

// epoch is the created time of every fixture image and history entry.
var epoch = time.Date(1980, 1, 2, 0, 0, 0, 0, time.UTC)

const mib = 1 << 20

// tf is one tar entry of a fixture layer. Name is written as is, so
// whiteouts are spelled out: ".wh.x", "dir/.wh..wh..opq".
type tf struct {
	name     string
	typ      byte // zero: a regular file (a directory when name ends in "/")
	mode     int64
	uid, gid int
	body     string
	link     string
}

func dir(name string, mode int64) tf   { return tf{name: name + "/", typ: tar.TypeDir, mode: mode} }
func file(name, body string) tf        { return tf{name: name, body: body, mode: 0o644} }
func whiteout(dirName, name string) tf { return tf{name: joinRel(dirName, ".wh."+name)} }
func opaque(dirName string) tf         { return tf{name: dirName + "/.wh..wh..opq"} }

// zeros is n zero bytes: big files that compress to nothing.
func zeros(n int) string { return strings.Repeat("\x00", n) }

func joinRel(dirName, name string) string {
	if dirName == "" {
		return name
	}
	return dirName + "/" + name
}

// tarOf is an uncompressed tar of entries in the order given.
func tarOf(t *testing.T, entries ...tf) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			Linkname: e.link, ModTime: epoch, Format: tar.FormatPAX}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
			if strings.HasSuffix(e.name, "/") {
				hdr.Typeflag = tar.TypeDir
			}
		}
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sha(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// putLayer stores a gzip layer of entries and returns its descriptor and
// diff ID.
func putLayer(t *testing.T, s *oci.Store, entries ...tf) (v1.Descriptor, v1.Hash) {
	t.Helper()
	raw := tarOf(t, entries...)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	d := v1.Descriptor{MediaType: types.OCILayer, Digest: sha(buf.Bytes()), Size: int64(buf.Len())}
	if err := s.WriteBlob(context.Background(), bytes.NewReader(buf.Bytes()), d.Digest, d.Size); err != nil {
		t.Fatal(err)
	}
	return d, sha(raw)
}

func newStore(t *testing.T) *oci.Store {
	t.Helper()
	s, err := oci.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// step is one Dockerfile instruction as the fixture builder applies it:
// its history text, the layer it makes (nil: none) and its config change.
type step struct {
	createdBy string
	layer     []tf
	config    func(c *v1.Config, env func(string) string)
}

// envStep is ENV k=v…, values expanded against the config's env as a build
// would.
func envStep(kvs ...string) step {
	return step{createdBy: "ENV " + strings.Join(kvs, " "), config: func(c *v1.Config, env func(string) string) {
		for _, kv := range kvs {
			k, v, _ := strings.Cut(kv, "=")
			c.Env = setEnv(c.Env, k, os.Expand(v, env))
		}
	}}
}

func runStep(cmdline string, layer ...tf) step {
	return step{createdBy: "RUN /bin/sh -c " + cmdline + " # buildkit", layer: layer}
}

func cmdStep(args ...string) step {
	return step{createdBy: "CMD " + strings.Join(args, " "), config: func(c *v1.Config, _ func(string) string) { c.Cmd = args }}
}

func setEnv(env []string, k, v string) []string {
	for i, kv := range env {
		if strings.HasPrefix(kv, k+"=") {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// build makes an image the way a Dockerfile build does: base's config,
// layers and history (nil: scratch), then steps; tags it name and records
// base's name and digest like minibuild's builder.
func build(t *testing.T, s *oci.Store, base *Image, name string, steps ...step) *Image {
	t.Helper()
	cfg := &v1.ConfigFile{Architecture: "amd64", OS: "linux", Created: v1.Time{Time: epoch}, RootFS: v1.RootFS{Type: "layers"}}
	var layers []v1.Descriptor
	ann := map[string]string{}
	if base != nil {
		cfg = base.Config.DeepCopy()
		layers = append(layers, base.Manifest.Layers...)
		ann[AnnotationBaseName] = base.Name
		ann[AnnotationBaseDigest] = base.Descriptor.Digest.String()
	}
	for _, st := range steps {
		if st.config != nil {
			env := parseEnv(cfg.Config.Env)
			st.config(&cfg.Config, func(k string) string { return env.vals[k] })
		}
		h := v1.History{Created: v1.Time{Time: epoch}, CreatedBy: st.createdBy, EmptyLayer: st.layer == nil}
		if st.layer != nil {
			d, diffID := putLayer(t, s, st.layer...)
			layers = append(layers, d)
			cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
		}
		cfg.History = append(cfg.History, h)
	}
	if len(ann) == 0 {
		ann = nil
	}
	d, err := s.PutImage(context.Background(), cfg, layers, ann)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(context.Background(), name, d); err != nil {
		t.Fatal(err)
	}
	return open(t, s, name)
}

func open(t *testing.T, s *oci.Store, ref string) *Image {
	t.Helper()
	im, err := Open(s, ref)
	if err != nil {
		t.Fatalf("Open(%q) = %v", ref, err)
	}
	return im
}

// busybox is a small base image: one layer with a "binary" and a link.
func busybox(t *testing.T, s *oci.Store, name string) *Image {
	t.Helper()
	return build(t, s, nil, name,
		step{createdBy: "ADD rootfs / # buildkit", layer: []tf{
			dir("bin", 0o755), file("bin/busybox", zeros(100_000)),
			{name: "bin/sh", typ: tar.TypeSymlink, link: "busybox", mode: 0o777},
		}},
		cmdStep("sh"))
}

// corpus01 is bench/corpus/01-seed-layers built on busybox: what each
// RUN leaves in its overlay upperdir.
func corpus01(t *testing.T, s *oci.Store, name string) *Image {
	t.Helper()
	base := busybox(t, s, "busybox")
	one, two := zeros(mib), zeros(mib)
	return build(t, s, base, name,
		runStep("mkdir /data", dir("data", 0o755)),
		runStep("dd if=/dev/zero bs=1024 count=1024 of=/data/one", dir("data", 0o755), file("data/one", one)),
		runStep("chmod -R 0777 /data", dir("data", 0o777), tf{name: "data/one", body: one, mode: 0o777}),
		runStep("dd if=/dev/zero bs=1024 count=1024 of=/data/two", dir("data", 0o777), file("data/two", two)),
		runStep("chmod -R 0777 /data", dir("data", 0o777), tf{name: "data/one", body: one, mode: 0o777}, tf{name: "data/two", body: two, mode: 0o777}),
		runStep("rm /data/one", dir("data", 0o777), whiteout("data", "one")),
		cmdStep("/bin/sh", "-c", "ls -alh /data"),
	)
}
