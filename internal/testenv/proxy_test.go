package testenv

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path string
		kind RequestKind
		repo string
	}{
		{"/v2/", KindPing, ""},
		{"/v2/_catalog", KindCatalog, ""},
		{"/v2/a/b/manifests/v1", KindManifest, "a/b"},
		{"/v2/a/manifests/sha256:abc", KindManifest, "a"},
		{"/v2/a/b/blobs/sha256:abc", KindBlob, "a/b"},
		{"/v2/a/blobs/uploads/", KindUpload, "a"},
		{"/v2/a/blobs/uploads/0b1c-2d", KindUpload, "a"},
		{"/v2/blobs/blobs/sha256:abc", KindBlob, "blobs"},
		{"/v2/a/manifests/x/blobs/sha256:abc", KindBlob, "a/manifests/x"},
		{"/v2/a/tags/list", KindTags, "a"},
		{"/v2/a/referrers/sha256:abc", KindReferrers, "a"},
		{"/v2/a/blobs/", KindOther, ""},
		{"/v2/a/blobs/uploads/x/y", KindOther, ""},
		{"/healthz", KindOther, ""},
	}
	for _, tt := range tests {
		kind, repo := classify(tt.path)
		if kind != tt.kind || repo != tt.repo {
			t.Errorf("classify(%q) = %q, %q, want %q, %q", tt.path, kind, repo, tt.kind, tt.repo)
		}
	}
}

func TestProcLog(t *testing.T) {
	t.Parallel()
	var l procLog
	w := l.watch("listening on 127.0.0.1:5000")
	for _, chunk := range []string{"starting\nlisten tcp: bind: address al", "ready in use\nlistening", " on 127.0.0.1:5000, tls\n", "tail"} {
		if _, err := l.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-w.ready:
	default:
		t.Error("ready not signalled after the line split across writes")
	}
	if !l.sawAddrInUse(w) {
		t.Error("sawAddrInUse = false after a bind error line, want true")
	}
	want := "starting\nlisten tcp: bind: address already in use\nlistening on 127.0.0.1:5000, tls\ntail"
	if got := l.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestProxyRewritesUpstreamURLs(t *testing.T) {
	t.Parallel()
	p := &FaultProxy{upstream: &url.URL{Scheme: "https", Host: "127.0.0.1:5000"}}
	p.Addr = "127.0.0.1:6000"
	tests := []struct{ header, in, want string }{
		{"Location", "https://127.0.0.1:5000/v2/a/blobs/uploads/1?_state=x", "http://127.0.0.1:6000/v2/a/blobs/uploads/1?_state=x"},
		{"Location", "/v2/a/blobs/uploads/1", "/v2/a/blobs/uploads/1"},
		{"Location", "https://storage.example/blob", "https://storage.example/blob"},
		{"Www-Authenticate", `Bearer realm="https://127.0.0.1:5000/token",service="r"`, `Bearer realm="http://127.0.0.1:6000/token",service="r"`},
		{"Www-Authenticate", `Basic realm="minibuild-test"`, `Basic realm="minibuild-test"`},
	}
	for _, tt := range tests {
		resp := &http.Response{Header: http.Header{tt.header: {tt.in}}}
		if err := p.modifyResponse(resp); err != nil {
			t.Fatal(err)
		}
		if got := resp.Header.Get(tt.header); got != tt.want {
			t.Errorf("modifyResponse(%s: %s) = %q, want %q", tt.header, tt.in, got, tt.want)
		}
	}
}

// proxyFixture is a TLS registry with auth holding one pushed image, and
// a fault proxy in front of it.
type proxyFixture struct {
	reg *Registry
	px  *FaultProxy
	im  testImage
}

const fixtureRepo = "fault/img"

func newProxyFixture(t *testing.T, opts ProxyOptions) proxyFixture {
	t.Helper()
	reg := StartRegistry(t, RegistryOptions{TLS: true, Auth: true})
	RequireTool(t, "skopeo")
	f := proxyFixture{reg: reg, px: StartFaultProxy(t, reg.Endpoint, opts), im: writeTestImage(t, 256<<10)}
	return f
}

func (f proxyFixture) blobPath() string {
	return "/v2/" + fixtureRepo + "/blobs/" + f.im.layerDigest()
}

func TestFaultProxyPush(t *testing.T) {
	t.Parallel()
	f := newProxyFixture(t, ProxyOptions{})
	px := f.px
	if px.Scheme() != "https" || px.CertDir != f.reg.CertDir || px.User != f.reg.User || px.Addr == f.reg.Addr {
		t.Fatalf("proxy endpoint = %+v, want TLS with the registry's CA and credentials on its own address", px.Endpoint)
	}

	// Upload sessions continue at the URL the registry returns: it must
	// name the proxy, or the pushes below bypass it.
	resp, _, err := get(t, &px.Endpoint, "POST", "/v2/"+fixtureRepo+"/blobs/uploads/", true)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST upload via proxy = %v, %v; want 202", resp, err)
	}
	if loc, err := url.Parse(resp.Header.Get("Location")); err != nil || (loc.Host != "" && loc.Host != px.Addr) {
		t.Errorf("upload Location = %q, want a URL on the proxy %s", resp.Header.Get("Location"), px.Addr)
	}

	pushTestImage(t, &px.Endpoint, f.im, fixtureRepo)
	if n := px.Count("PUT", KindUpload); n < 2 {
		t.Errorf("proxy saw %d upload PUTs, want one per blob (2): the push went around it", n)
	}
	if n := px.Count("PUT", KindManifest); n != 1 {
		t.Errorf("proxy saw %d manifest PUTs, want 1", n)
	}
	if got := px.BlobBytes(); got != 0 {
		t.Errorf("BlobBytes() after a push = %d, want 0 (uploads are not downloads)", got)
	}

	// Reading through the proxy with a child's Env() and skopeo's flags.
	raw := runTool(t, "skopeo", append(append([]string{"inspect", "--raw"}, px.SkopeoArgs()...), "docker://"+px.Ref(fixtureRepo+":v1"))...)
	if got := digestOf(raw); got != f.im.manifestDigest() {
		t.Errorf("skopeo inspect via proxy: digest %s, want %s", got, f.im.manifestDigest())
	}
	px.ResetStats()
	out := t.TempDir()
	runTool(t, "skopeo", append(append([]string{"copy", "--quiet"}, px.SkopeoSrcArgs()...), "docker://"+px.Ref(fixtureRepo+":v1"), "oci:"+out+":v1")...)
	if got, want := px.BlobBytes(), int64(len(f.im.layer)); got < want {
		t.Errorf("BlobBytes() after a pull = %d, want at least the layer's %d", got, want)
	}
	if n := px.Count("", KindManifest); n == 0 {
		t.Errorf("Count(any, manifest) = 0 after a pull")
	}
}

func TestFaultProxyFaults(t *testing.T) {
	t.Parallel()
	f := newProxyFixture(t, ProxyOptions{})
	pushTestImage(t, &f.reg.Endpoint, f.im, fixtureRepo)
	px, blob := f.px, f.blobPath()
	size := int64(len(f.im.layer))

	t.Run("pass", func(t *testing.T) {
		px.ResetStats()
		resp, body, err := get(t, &px.Endpoint, "GET", blob, true)
		if err != nil || resp.StatusCode != http.StatusOK || digestOf(body) != f.im.layerDigest() {
			t.Fatalf("GET blob = %v, %v, digest %s; want 200 with %s", resp, err, digestOf(body), f.im.layerDigest())
		}
		if got := px.BlobBytes(); got != size {
			t.Errorf("BlobBytes() = %d, want %d", got, size)
		}
		want := []Request{{Method: "GET", Path: blob, Kind: KindBlob, Repo: fixtureRepo, Status: 200, Bytes: size}}
		if diff := cmp.Diff(want, px.Requests()); diff != "" {
			t.Errorf("Requests() mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("status", func(t *testing.T) {
		for _, status := range []int{500, 502, 503, 401, 403, 404, 429} {
			px.Clear()
			px.ResetStats()
			px.Add(Rule{Method: "GET", Kind: KindBlob, Times: 2, Fault: FailWith(status)})
			for i, want := range []int{status, status, http.StatusOK} {
				resp, body, err := get(t, &px.Endpoint, "GET", blob, true)
				if err != nil || resp.StatusCode != want {
					t.Fatalf("status %d: GET blob #%d = %v, %v; want %d", status, i+1, resp, err, want)
				}
				if want == status {
					var e struct{ Errors []struct{ Code string } }
					if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) != 1 || e.Errors[0].Code != registryErrorCode(status, KindBlob) {
						t.Errorf("status %d: error body %s, want code %s", status, body, registryErrorCode(status, KindBlob))
					}
					if status == 401 && !strings.HasPrefix(resp.Header.Get("Www-Authenticate"), "Basic ") {
						t.Errorf("401 without a Basic challenge: %v", resp.Header)
					}
				}
			}
			if got := px.BlobBytes(); got != size {
				t.Errorf("status %d: BlobBytes() = %d, want %d (failed requests send no blob data)", status, got, size)
			}
		}
		px.Clear()
	})

	t.Run("reset", func(t *testing.T) {
		px.ResetStats()
		px.Add(Rule{Method: "GET", PathContains: f.im.layerDigest(), Times: 1, Fault: ResetAfter(1000)})
		resp, body, err := get(t, &px.Endpoint, "GET", blob, true)
		if err == nil || resp == nil || resp.StatusCode != http.StatusOK || int64(len(body)) > 1000 {
			t.Errorf("GET blob with reset = %v, %d bytes, %v; want 200 headers, ≤ 1000 bytes and an error", resp, len(body), err)
		}
		if rs := px.Requests(); len(rs) != 1 || rs[0].Fault != FaultReset || rs[0].Bytes != 1000 {
			t.Errorf("Requests() = %+v, want one reset request with 1000 bytes", rs)
		}
		if _, body, err := get(t, &px.Endpoint, "GET", blob, true); err != nil || digestOf(body) != f.im.layerDigest() {
			t.Errorf("GET blob after the reset = %v, want the blob", err)
		}
	})

	t.Run("corrupt", func(t *testing.T) {
		px.Add(Rule{Method: "GET", Kind: KindBlob, Times: 1, Fault: CorruptAt(size * 2)})
		resp, body, err := get(t, &px.Endpoint, "GET", blob, true)
		if err != nil || resp.StatusCode != http.StatusOK || int64(len(body)) != size || digestOf(body) == f.im.layerDigest() {
			t.Fatalf("GET corrupted blob = %v, %d bytes, %v; want 200, %d bytes, wrong digest", resp, len(body), err, size)
		}
		if body[size-1] != f.im.layer[size-1]^0xff {
			t.Errorf("offset beyond the body: last byte not inverted")
		}
		// A real client notices.
		px.Add(Rule{Method: "GET", Kind: KindBlob, PathContains: f.im.layerDigest(), Times: 1, Fault: CorruptAt(4096)})
		args := append(append([]string{"copy", "--quiet"}, px.SkopeoSrcArgs()...), "docker://"+px.Ref(fixtureRepo+":v1"), "oci:"+t.TempDir()+":v1")
		if _, err := tryTool(t, "skopeo", args...); err == nil || !strings.Contains(strings.ToLower(err.Error()), "digest") {
			t.Errorf("skopeo copy of a corrupted blob: %v, want a digest error", err)
		}
	})

	t.Run("drop", func(t *testing.T) {
		px.Add(Rule{Kind: KindManifest, Times: 1, Fault: Drop()})
		if resp, _, err := get(t, &px.Endpoint, "GET", "/v2/"+fixtureRepo+"/manifests/v1", true); err == nil {
			t.Errorf("GET manifest with drop = %v, want a connection error", resp.Status)
		}
		if resp, _, err := get(t, &px.Endpoint, "GET", "/v2/"+fixtureRepo+"/manifests/v1", true); err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("GET manifest after the drop = %v, %v; want 200", resp, err)
		}
	})

	t.Run("delay", func(t *testing.T) {
		// The client gives up long before the delay ends; the proxy notices.
		px.Add(Rule{Kind: KindManifest, Match: func(r *http.Request) bool { return r.Method == "GET" }, Times: 1, Fault: Slow(time.Hour)})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if _, _, err := getWith(t, ctx, &px.Endpoint, "GET", "/v2/"+fixtureRepo+"/manifests/v1", true); err == nil {
			t.Errorf("GET manifest delayed by an hour succeeded within 100ms")
		}
	})

	t.Run("pass-then-fail", func(t *testing.T) {
		px.Clear()
		px.Add(Rule{Method: "HEAD", Kind: KindBlob, Times: 1}, Rule{Method: "HEAD", Kind: KindBlob, Fault: FailWith(500)})
		for i, want := range []int{200, 500, 500} {
			if resp, _, err := get(t, &px.Endpoint, "HEAD", blob, true); err != nil || resp.StatusCode != want {
				t.Errorf("HEAD blob #%d = %v, %v; want %d", i+1, resp, err, want)
			}
		}
		px.Clear()
	})
}

func TestFaultProxyPlainFrontend(t *testing.T) {
	t.Parallel()
	f := newProxyFixture(t, ProxyOptions{PlainHTTP: true})
	pushTestImage(t, &f.reg.Endpoint, f.im, fixtureRepo)
	px := f.px
	if px.Scheme() != "http" || px.CertDir != "" || px.User == "" {
		t.Fatalf("plain proxy endpoint = %+v, want http with credentials", px.Endpoint)
	}
	raw := runTool(t, "skopeo", append(append([]string{"inspect", "--raw"}, px.SkopeoArgs()...), "docker://"+px.Ref(fixtureRepo+":v1"))...)
	if got := digestOf(raw); got != f.im.manifestDigest() {
		t.Errorf("skopeo inspect via plain proxy: digest %s, want %s", got, f.im.manifestDigest())
	}
	px.Stop()
	if _, _, err := get(t, &px.Endpoint, "GET", "/v2/", true); err == nil {
		t.Errorf("GET /v2/ after Stop succeeded, want a connection error")
	}
	px.Stop() // idempotent
}
