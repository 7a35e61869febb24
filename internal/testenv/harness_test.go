package testenv

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// helperEnv makes the test binary act as a registry client child process
// (see TestMain) instead of running tests.
const helperEnv = "TESTENV_HELPER_FETCH_URL"

func TestMain(m *testing.M) {
	if u := os.Getenv(helperEnv); u != "" {
		os.Exit(helperFetch(u))
	}
	os.Exit(m.Run())
}

// helperFetch GETs a manifest URL the way a child minibuild does: Go's
// default transport (trust from SSL_CERT_FILE) and credentials from
// $DOCKER_CONFIG/config.json. It prints the body's digest.
func helperFetch(rawURL string) int {
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	var cfg struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	data, err := os.ReadFile(filepath.Join(os.Getenv("DOCKER_CONFIG"), "config.json"))
	if err == nil {
		err = json.Unmarshal(data, &cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "read docker config:", err)
		return 1
	}
	if a, ok := cfg.Auths[req.URL.Host]; ok {
		req.Header.Set("Authorization", "Basic "+a.Auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, resp.Status, err)
		return 1
	}
	fmt.Println(digestOf(body))
	return 0
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// testImage is a one-layer OCI image in an image layout directory.
type testImage struct {
	layout   string // OCI layout directory, tag "v1"
	manifest []byte
	layer    []byte // uncompressed tar
}

func (im testImage) manifestDigest() string { return digestOf(im.manifest) }
func (im testImage) layerDigest() string    { return digestOf(im.layer) }

// writeTestImage builds an image whose layer holds one file of random
// (incompressible) bytes.
func writeTestImage(t *testing.T, fileSize int) testImage {
	t.Helper()
	content := make([]byte, fileSize)
	if _, err := rand.Read(content); err != nil {
		t.Fatal(err)
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	hdr := &tar.Header{Name: "data.bin", Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	im := testImage{layout: t.TempDir(), layer: layer.Bytes()}
	config := mustJSON(t, map[string]any{
		"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{im.layerDigest()}},
	})
	desc := func(mediaType string, b []byte) map[string]any {
		return map[string]any{"mediaType": mediaType, "digest": digestOf(b), "size": len(b)}
	}
	im.manifest = mustJSON(t, map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        desc("application/vnd.oci.image.config.v1+json", config),
		"layers":        []any{desc("application/vnd.oci.image.layer.v1.tar", im.layer)},
	})
	mdesc := desc("application/vnd.oci.image.manifest.v1+json", im.manifest)
	mdesc["annotations"] = map[string]string{"org.opencontainers.image.ref.name": "v1"}
	index := mustJSON(t, map[string]any{"schemaVersion": 2, "manifests": []any{mdesc}})
	files := map[string][]byte{"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`), "index.json": index}
	for _, b := range [][]byte{im.layer, config, im.manifest} {
		files["blobs/sha256/"+strings.TrimPrefix(digestOf(b), "sha256:")] = b
	}
	for name, b := range files {
		p := filepath.Join(im.layout, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return im
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// runTool runs an external tool and returns its stdout, failing t on error.
func runTool(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out, err := tryTool(t, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out
}

// tryTool runs an external tool; the error carries its stderr.
func tryTool(t *testing.T, name string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := osexec.Command(RequireTool(t, name), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// pushTestImage copies im to repo:v1 on e with skopeo, keeping its digest.
func pushTestImage(t *testing.T, e *Endpoint, im testImage, repo string) {
	t.Helper()
	args := append([]string{"copy", "--quiet", "--preserve-digests"}, e.SkopeoDestArgs()...)
	args = append(args, "oci:"+im.layout+":v1", "docker://"+e.Ref(repo+":v1"))
	runTool(t, "skopeo", args...)
}

// get sends one request to e with a fresh transport (a dropped connection
// is never silently retried) and returns status, headers and body; the
// error is any transport or body read error.
func get(t *testing.T, e *Endpoint, method, path string, auth bool) (*http.Response, []byte, error) {
	t.Helper()
	return getWith(t, context.Background(), e, method, path, auth)
}

func getWith(t *testing.T, ctx context.Context, e *Endpoint, method, path string, auth bool) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, e.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	if auth && e.User != "" {
		req.SetBasicAuth(e.User, e.Password)
	}
	tr := e.Transport()
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// processesWith returns the pids of processes whose command line contains
// arg: a process scan for leftovers.
func processesWith(t *testing.T, arg string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue // exited meanwhile
		}
		for _, a := range bytes.Split(cmdline, []byte{0}) {
			if string(a) == arg {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// listenAddrs returns the local addresses (hex, as in /proc/net/tcp) of
// the TCP sockets pid listens on.
func listenAddrs(t *testing.T, pid int) []string {
	t.Helper()
	fdDir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if inode, ok := strings.CutPrefix(target, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	var addrs []string
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) > 9 && fields[3] == "0A" && inodes[fields[9]] {
				addrs = append(addrs, fields[1])
			}
		}
		f.Close()
	}
	return addrs
}
