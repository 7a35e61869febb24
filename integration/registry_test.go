package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"minibuild/internal/testenv"
)

// regRun runs minibuild args in e's store with env added to the
// environment (a registry endpoint's DOCKER_CONFIG and SSL_CERT_FILE).
func regRun(e *Env, env []string, args ...string) Result {
	e.t.Helper()
	cmd := e.Command(e.t.Context(), args...)
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		e.t.Fatalf("run minibuild %s: %v", strings.Join(args, " "), err)
	}
	return Result{Args: args, Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: cmd.ProcessState.ExitCode()}
}

func regMustRun(e *Env, env []string, args ...string) string {
	e.t.Helper()
	r := regRun(e, env, args...)
	if r.ExitCode != 0 {
		e.t.Fatalf("%v", r)
	}
	return r.Stdout
}

// linesWith counts the lines of out that start with prefix.
func linesWith(out, prefix string) int {
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// finalDigest is the digest on the last line of a pull or push
// ("NAME: digest: sha256:… size: N").
func finalDigest(t *testing.T, out string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(f) != 5 || f[1] != "digest:" {
		t.Fatalf("last line of\n%s\nis not NAME: digest: DIGEST size: N", out)
	}
	return f[2]
}

func TestRegistryPushPullTag(t *testing.T) {
	t.Parallel()
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{TLS: true, Auth: true})
	px := testenv.StartFaultProxy(t, reg.Endpoint, testenv.ProxyOptions{})
	env := px.Env()
	ref := px.Ref("team/app:v1")

	a := NewEnv(t)
	digests := writeLayout(t, a.Path("layout"), image{Layers: []layer{
		gzipLayer(t, randomLayer(t, 1, 300<<10)), gzipLayer(t, randomLayer(t, 2, 100<<10)),
	}})
	a.MustRun("import", a.Path("layout"), "-t", ref)
	out := regMustRun(a, env, "push", ref)
	if n := linesWith(out, "pushing "); n != 3 {
		t.Errorf("first push printed %d pushing lines, want 3 (config, 2 layers):\n%s", n, out)
	}
	if got := finalDigest(t, out); got != digests[0] {
		t.Errorf("push digest = %s, want %s", got, digests[0])
	}
	// Again: every blob exists, no byte is uploaded.
	px.ResetStats()
	out = regMustRun(a, env, "push", ref)
	if n, m := linesWith(out, "exists "), linesWith(out, "pushing "); n != 3 || m != 0 {
		t.Errorf("second push: %d exists and %d pushing lines, want 3 and 0:\n%s", n, m, out)
	}
	if n := px.Count(http.MethodPatch, testenv.KindUpload) + px.Count(http.MethodPut, testenv.KindUpload); n != 0 {
		t.Errorf("second push made %d upload requests, want 0", n)
	}
	// To another repository of the registry: mounts.
	out = regMustRun(a, env, "push", ref, px.Ref("mirror/app:v1"))
	if n := linesWith(out, "mounted "); n != 3 {
		t.Errorf("push to another repository: %d mounted lines, want 3:\n%s", n, out)
	}

	// A fresh store pulls it back under the same digest and can tag it.
	b := NewEnv(t)
	out = regMustRun(b, env, "pull", ref)
	if got := finalDigest(t, out); got != digests[0] || linesWith(out, "pulling ") != 3 {
		t.Errorf("pull = %s, want %s after 3 downloads:\n%s", got, digests[0], out)
	}
	if out := regMustRun(b, env, "pull", ref); linesWith(out, "exists ") != 3 || linesWith(out, "pulling ") != 0 {
		t.Errorf("second pull downloaded again:\n%s", out)
	}
	b.MustRun("tag", ref, "local/app:1")
	var insp []struct {
		Names  []string
		Digest string
	}
	if err := json.Unmarshal([]byte(b.MustRun("inspect", "local/app:1")), &insp); err != nil {
		t.Fatal(err)
	}
	if len(insp) != 1 || insp[0].Digest != digests[0] || len(insp[0].Names) != 2 {
		t.Errorf("inspect local/app:1 = %+v, want %s with two names", insp, digests[0])
	}
	b.Fsck()

	// skopeo reads what minibuild pushed.
	skopeo := testenv.RequireTool(t, "skopeo")
	args := append([]string{"inspect"}, reg.SkopeoArgs()...)
	raw, err := exec.Command(skopeo, append(args, "docker://"+reg.Ref("team/app:v1"))...).Output()
	var si struct{ Digest string }
	if err != nil || json.Unmarshal(raw, &si) != nil || si.Digest != digests[0] {
		t.Errorf("skopeo inspect = %s (%v), want digest %s", raw, err, digests[0])
	}
}

func TestRegistryErrors(t *testing.T) {
	t.Parallel()
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{TLS: true, Auth: true})
	px := testenv.StartFaultProxy(t, reg.Endpoint, testenv.ProxyOptions{})
	env := px.Env()
	ref := px.Ref("app:1")
	a := NewEnv(t)
	digests := writeLayout(t, a.Path("layout"), image{Layers: []layer{gzipLayer(t, randomLayer(t, 3, 200<<10))}})
	a.MustRun("import", a.Path("layout"), "-t", ref)
	regMustRun(a, env, "push", ref)
	layerDigest := pushedLayer(t, a, ref)

	e := NewEnv(t)
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		code int
		want []string // in stderr
	}{
		{"missing tag", env, []string{"pull", px.Ref("app:nothere")}, 1, []string{px.Addr + "/app:nothere", "not found"}},
		{"no credentials", []string{"DOCKER_CONFIG=" + t.TempDir(), "SSL_CERT_FILE=" + px.CAFile}, []string{"pull", ref}, 1, []string{px.Addr + "/app", "unauthorized"}},
		{"untrusted certificate", []string{"DOCKER_CONFIG=" + px.DockerConfigDir, "SSL_CERT_FILE=/dev/null"}, []string{"pull", ref}, 1, []string{px.Addr, "certificate"}},
		{"no image", env, []string{"push", "sha256:" + strings.Repeat("0", 64)}, 1, []string{"not found"}},
		{"usage", env, []string{"push"}, 2, []string{"arg"}},
		{"bad platform", env, []string{"pull", "--platform", "linux", ref}, 2, []string{"platform"}},
	} {
		r := regRun(e, tc.env, tc.args...)
		t.Logf("%s: %s", tc.name, r.Stderr)
		if r.ExitCode != tc.code {
			t.Errorf("%s: exit %d, want %d: %v", tc.name, r.ExitCode, tc.code, r)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(r.Stderr, w) {
				t.Errorf("%s: stderr %q does not mention %q", tc.name, r.Stderr, w)
			}
		}
	}

	// A corrupted download fails naming the digest, and leaves nothing.
	px.Add(testenv.Rule{Method: "GET", Kind: testenv.KindBlob, PathContains: layerDigest[len("sha256:"):], Fault: testenv.CorruptAt(5000)})
	r := regRun(e, env, "pull", ref)
	if r.ExitCode != 1 || !strings.Contains(r.Stderr, layerDigest) || !strings.Contains(r.Stderr, "digest mismatch") {
		t.Errorf("pull of a corrupted layer: %v; want exit 1 naming %s", r, layerDigest)
	}
	px.Clear()
	// A reset mid-layer is retried.
	px.Add(testenv.Rule{Method: "GET", Kind: testenv.KindBlob, PathContains: layerDigest[len("sha256:"):], Times: 1, Fault: testenv.ResetAfter(10 << 10)})
	if out := regMustRun(e, env, "pull", ref); finalDigest(t, out) != digests[0] || linesWith(out, "retrying ") != 1 {
		t.Errorf("pull through a reset:\n%s\nwant one retry and digest %s", out, digests[0])
	}
	e.Fsck()

	// With the registry down: a clear error, nothing tagged.
	f := NewEnv(t)
	px.Stop()
	r = regRun(f, env, "pull", ref)
	if r.ExitCode != 1 || !strings.Contains(r.Stderr, "cannot reach registry "+px.Addr) {
		t.Errorf("pull with the registry down: %v", r)
	}
	if out := f.MustRun("images"); strings.Contains(out, "app") {
		t.Errorf("images after a failed pull:\n%s", out)
	}
	f.Fsck()
}

// pushedLayer is the digest of the first layer of image ref in e's store.
func pushedLayer(t *testing.T, e *Env, ref string) string {
	t.Helper()
	var insp []struct {
		Manifest struct {
			Layers []struct{ Digest string }
		}
	}
	if err := json.Unmarshal([]byte(e.MustRun("inspect", ref)), &insp); err != nil || len(insp) != 1 || len(insp[0].Manifest.Layers) == 0 {
		t.Fatalf("inspect %s: %v", ref, err)
	}
	return insp[0].Manifest.Layers[0].Digest
}

func TestRegistryInsecureOptIn(t *testing.T) {
	t.Parallel()
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{TLS: true, Auth: true})
	ref := reg.Ref("app:1")
	a := NewEnv(t)
	digests := writeLayout(t, a.Path("layout"), image{Layers: []layer{gzipLayer(t, randomLayer(t, 4, 1000))}})
	a.MustRun("import", a.Path("layout"), "-t", ref)
	// The CA is not trusted: the certificate check fails...
	noCA := []string{"DOCKER_CONFIG=" + reg.DockerConfigDir, "SSL_CERT_FILE=/dev/null"}
	if r := regRun(a, noCA, "push", ref); r.ExitCode != 1 {
		t.Fatalf("push to an untrusted registry: %v, want a failure", r)
	}
	// ...unless the user names the registry insecure, by flag or environment.
	regMustRun(a, noCA, "push", "--insecure-registry", reg.Addr, ref)
	b := NewEnv(t)
	out := regMustRun(b, append(noCA, "MINIBUILD_INSECURE_REGISTRIES=other:5000, "+reg.Addr), "pull", ref)
	if got := finalDigest(t, out); got != digests[0] {
		t.Errorf("pull = %s, want %s", got, digests[0])
	}
}
