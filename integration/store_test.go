package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"minibuild/internal/testenv"
)

func TestImportImagesInspectRmi(t *testing.T) {
	t.Parallel()
	e := NewEnv(t)
	digests := writeLayout(t, e.Path("layout"),
		image{RefName: "example.com/app:1", Layers: []layer{gzipLayer(t, tarLayer(t, tarEntry{Name: "hello", Body: []byte("hi")}))}})
	out := e.MustRun("import", e.Path("layout"), "-t", "app")
	for _, want := range []string{"example.com/app:1", "docker.io/library/app:latest", digests[0]} {
		if !strings.Contains(out, want) {
			t.Errorf("import output %q does not mention %s", out, want)
		}
	}
	images := e.MustRun("images")
	lines := strings.Split(strings.TrimSpace(images), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") || !strings.Contains(images, digests[0][7:19]) {
		t.Errorf("images =\n%s\nwant a header and two rows with digest %s", images, digests[0][7:19])
	}
	var insp []struct {
		Names    []string
		Digest   string
		Manifest struct{ MediaType string }
		Config   struct{ Architecture string }
	}
	if err := json.Unmarshal([]byte(e.MustRun("inspect", "app")), &insp); err != nil {
		t.Fatal(err)
	}
	if len(insp) != 1 || insp[0].Digest != digests[0] || insp[0].Manifest.MediaType != mtManifest || insp[0].Config.Architecture != "amd64" || len(insp[0].Names) != 2 {
		t.Errorf("inspect app = %+v", insp)
	}
	// Untagging one name keeps the blobs; the last one deletes them.
	if out := e.MustRun("rmi", "app"); strings.Contains(out, "Deleted") {
		t.Errorf("rmi of one of two tags deleted blobs:\n%s", out)
	}
	if out := e.MustRun("rmi", "example.com/app:1"); strings.Count(out, "Deleted: sha256:") != 3 {
		t.Errorf("rmi of the last tag = %q, want 3 blobs deleted", out)
	}
	if r := e.MustFail("rmi", "nothere"); r.ExitCode != 1 || !strings.Contains(r.Stderr, "nothere") {
		t.Errorf("rmi nothere: %v", r)
	}
	if n := len(layoutState(t, e.Root)); n != 2 { // oci-layout, index.json
		t.Errorf("layout after rmi holds %d files, want 2", n)
	}
	e.Fsck()
}

func TestInteropSkopeoUmoci(t *testing.T) {
	t.Parallel()
	skopeo := testenv.RequireTool(t, "skopeo")
	umoci := testenv.RequireTool(t, "umoci")
	e := NewEnv(t)
	writeLayout(t, e.Path("src"), image{RefName: "latest", Layers: []layer{busyboxLayer(t)}})
	run(t, skopeo, "copy", "--quiet", "oci:"+e.Path("src")+":latest", "oci:"+e.Path("copied")+":latest")
	want := indexNames(t, e.Path("copied"))["latest"]
	if want == "" {
		t.Fatalf("skopeo copy wrote no latest tag")
	}

	e.MustRun("import", e.Path("copied"), "-t", "busybox:1")
	name := "docker.io/library/busybox:1"
	if got := indexNames(t, filepath.Join(e.Root, "oci"))[name]; got != want {
		t.Errorf("imported digest = %q, want skopeo's %s", got, want)
	}
	// Other tools read the store as it is.
	var inspected struct{ Digest string }
	if err := json.Unmarshal(run(t, skopeo, "inspect", "oci:"+filepath.Join(e.Root, "oci")+":"+name), &inspected); err != nil || inspected.Digest != want {
		t.Errorf("skopeo inspect of the store = %+v, %v; want digest %s", inspected, err, want)
	}
	if out := string(run(t, umoci, "ls", "--layout", filepath.Join(e.Root, "oci"))); !strings.Contains(out, name) {
		t.Errorf("umoci ls = %q, want %s", out, name)
	}
	if out := string(run(t, umoci, "stat", "--image", filepath.Join(e.Root, "oci")+":"+name)); !strings.Contains(out, "LAYER") {
		t.Errorf("umoci stat = %q", out)
	}
	// Saved archives are read by skopeo.
	e.MustRun("save", "busybox:1", "--format", "docker", "-o", e.Path("docker.tar"))
	var fromDocker struct{ Architecture string }
	if err := json.Unmarshal(run(t, skopeo, "inspect", "docker-archive:"+e.Path("docker.tar")), &fromDocker); err != nil || fromDocker.Architecture != "amd64" {
		t.Errorf("skopeo inspect docker-archive = %+v, %v", fromDocker, err)
	}
	e.MustRun("save", "busybox:1", "--format", "oci", "-o", e.Path("oci.tar"))
	var fromOCI struct{ Digest string }
	if err := json.Unmarshal(run(t, skopeo, "inspect", "oci-archive:"+e.Path("oci.tar")), &fromOCI); err != nil || fromOCI.Digest != want {
		t.Errorf("skopeo inspect oci-archive = %+v, %v; want digest %s", fromOCI, err, want)
	}
	// A docker-archive written by skopeo imports with its name and config.
	run(t, skopeo, "copy", "--quiet", "oci:"+e.Path("src")+":latest", "docker-archive:"+e.Path("skopeo.tar")+":skopeo/bb:2")
	e.MustRun("import", e.Path("skopeo.tar"))
	var fromStore, fromSrc []struct{ Config json.RawMessage }
	json.Unmarshal([]byte(e.MustRun("inspect", "skopeo/bb:2")), &fromStore)
	json.Unmarshal([]byte(e.MustRun("inspect", "busybox:1")), &fromSrc)
	if len(fromStore) != 1 || len(fromSrc) != 1 || digestOf(fromStore[0].Config) != digestOf(fromSrc[0].Config) {
		t.Errorf("config of the skopeo docker-archive import differs from the original")
	}
	// And the OCI save comes back with the same digest and name.
	other := NewEnv(t)
	other.MustRun("import", e.Path("oci.tar"))
	if got := indexNames(t, filepath.Join(other.Root, "oci"))[name]; got != want {
		t.Errorf("re-imported OCI save = %q, want %s", got, want)
	}
	e.Fsck()
}

func run(t *testing.T, prog string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), prog, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func TestImportBadInput(t *testing.T) {
	t.Parallel()
	good := func(t *testing.T, dir string) []string {
		return writeLayout(t, dir, image{RefName: "docker.io/library/bad:1", Layers: []layer{
			gzipLayer(t, tarLayer(t, tarEntry{Name: "a", Body: []byte("1")})),
			gzipLayer(t, tarLayer(t, tarEntry{Name: "b", Body: []byte("2")})),
		}})
	}
	// layerDigest is the digest of layer i of the layout's image.
	layerDigest := func(t *testing.T, dir string, i int) string {
		var m struct{ Layers []descriptor }
		digest := indexNames(t, dir)["docker.io/library/bad:1"]
		if err := json.Unmarshal(readFile(t, filepath.Join(dir, "blobs/sha256", digest[7:])), &m); err != nil {
			t.Fatal(err)
		}
		return m.Layers[i].Digest
	}
	tests := []struct {
		name string
		make func(t *testing.T, dir string) (path, mention string) // the input and what the error must name
	}{
		{"truncated archive", func(t *testing.T, dir string) (string, string) {
			good(t, dir)
			out := dir + ".tar"
			tarDir(t, dir, out)
			b := readFile(t, out)
			writeFile(t, out, b[:len(b)*2/3])
			return out, "unexpected EOF"
		}},
		{"wrong digest", func(t *testing.T, dir string) (string, string) {
			good(t, dir)
			d := layerDigest(t, dir, 1)
			p := filepath.Join(dir, "blobs/sha256", d[7:])
			b := readFile(t, p)
			b[len(b)/2] ^= 1
			writeFile(t, p, b)
			return dir, d
		}},
		{"missing blob", func(t *testing.T, dir string) (string, string) {
			good(t, dir)
			d := layerDigest(t, dir, 0)
			os.Remove(filepath.Join(dir, "blobs/sha256", d[7:]))
			return dir, d
		}},
		{"unknown media type", func(t *testing.T, dir string) (string, string) {
			writeLayout(t, dir, image{RefName: "docker.io/library/bad:1", Layers: []layer{{
				Blob: []byte("not a tar"), MediaType: "application/x-mystery", DiffID: digestOf([]byte("x")),
			}}})
			return dir, "application/x-mystery"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := NewEnv(t)
			writeLayout(t, e.Path("ok"), image{RefName: "docker.io/library/ok:1", Layers: []layer{tarLayer(t, tarEntry{Name: "ok", Body: []byte("ok")})}})
			e.MustRun("import", e.Path("ok"))
			before := layoutState(t, e.Root)

			path, mention := tc.make(t, e.Path("bad"))
			r := e.MustFail("import", path)
			lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
			if r.ExitCode != 1 || len(lines) != 1 || !strings.HasPrefix(lines[0], "minibuild: import ") || !strings.Contains(lines[0], mention) {
				t.Errorf("want exit 1 and one error line naming %s: %v", mention, r)
			}
			if diff := cmp.Diff(before, layoutState(t, e.Root)); diff != "" {
				t.Errorf("failed import changed the store (-before +after):\n%s", diff)
			}
			if entries, _ := os.ReadDir(filepath.Join(e.Root, "ingest")); len(entries) != 0 {
				t.Errorf("ingest/ holds %d entries after a failed import", len(entries))
			}
			e.Fsck()
		})
	}
}

// Many processes importing and tagging at once: every tag lands, and
// index.json stays valid.
func TestConcurrentImports(t *testing.T) {
	t.Parallel()
	e := NewEnv(t)
	const n = 8
	want := map[string]string{}
	var cmds []*exec.Cmd
	for i := range n {
		dir := e.Path("layout", string(rune('a'+i)))
		d := writeLayout(t, dir, image{Layers: []layer{tarLayer(t, tarEntry{Name: "f", Body: []byte{byte(i)}})}})
		name := "docker.io/library/img" + string(rune('a'+i)) + ":latest"
		want[name] = d[0]
		cmds = append(cmds, e.Command(t.Context(), "import", dir, "-t", name))
		// A second process tags the same image under another name.
		alias := "docker.io/library/alias" + string(rune('a'+i)) + ":latest"
		want[alias] = d[0]
		cmds = append(cmds, e.Command(t.Context(), "import", dir, "-t", alias))
	}
	var wg sync.WaitGroup
	for _, c := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := c.CombinedOutput(); err != nil {
				t.Errorf("%s: %v\n%s", c, err, out)
			}
		}()
	}
	wg.Wait()
	if diff := cmp.Diff(want, indexNames(t, filepath.Join(e.Root, "oci"))); diff != "" {
		t.Errorf("tags after concurrent imports (-want +got):\n%s", diff)
	}
	e.Fsck()
}

func TestSaveLeavesNoPartialFile(t *testing.T) {
	t.Parallel()
	e := NewEnv(t)
	out := e.Path("out", "image.tar")
	os.MkdirAll(filepath.Dir(out), 0o755)
	r := e.MustFail("save", "nothere", "-o", out)
	if !strings.Contains(r.Stderr, "nothere") {
		t.Errorf("save nothere: %v", r)
	}
	if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 0 {
		t.Errorf("failed save left %d files in the output dir", len(entries))
	}
	if r := e.Run("save", "x", "--format", "zip", "-o", out); r.ExitCode != 2 {
		t.Errorf("save --format zip: want usage error (exit 2): %v", r)
	}
}
