package testenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestRegistryTLSAuth(t *testing.T) {
	t.Parallel()
	reg := StartRegistry(t, RegistryOptions{TLS: true, Auth: true})
	RequireTool(t, "skopeo")

	// Bound to the loopback address only.
	port := reg.Addr[strings.LastIndex(reg.Addr, ":")+1:]
	wantListen := fmt.Sprintf("0100007F:%04X", mustAtoi(t, port))
	if got := listenAddrs(t, reg.proc.pid()); len(got) != 1 || got[0] != wantListen {
		t.Errorf("registry listens on %v, want only %s (%s)", got, wantListen, reg.Addr)
	}

	resp, _, err := get(t, &reg.Endpoint, "GET", "/v2/", false)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Www-Authenticate") != `Basic realm="minibuild-test"` {
		t.Errorf("GET /v2/ without credentials = %s %q, want 401 with a Basic challenge", resp.Status, resp.Header.Get("Www-Authenticate"))
	}
	if resp, _, err := get(t, &reg.Endpoint, "GET", "/v2/", true); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/ with credentials = %v, %v; want 200", resp, err)
	}
	// The certificate also holds for "localhost".
	local := reg.Endpoint
	local.Addr = "localhost:" + port
	if resp, _, err := get(t, &local, "GET", "/v2/", true); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET https://localhost:%s/v2/ = %v, %v; want 200", port, resp, err)
	}

	im := writeTestImage(t, 4096)
	pushTestImage(t, &reg.Endpoint, im, "harness/small")
	raw := runTool(t, "skopeo", append(append([]string{"inspect", "--raw"}, reg.SkopeoArgs()...), "docker://"+reg.Ref("harness/small:v1"))...)
	if got, want := digestOf(raw), im.manifestDigest(); got != want {
		t.Errorf("skopeo inspect --raw: manifest digest %s, want %s", got, want)
	}
	noCreds := []string{"inspect", "--raw", "--cert-dir", reg.CertDir, "--no-creds", "docker://" + reg.Ref("harness/small:v1")}
	if _, err := tryTool(t, "skopeo", noCreds...); err == nil {
		t.Errorf("skopeo %s succeeded without credentials", strings.Join(noCreds, " "))
	}

	// A child process with only Env() trusts the CA and finds credentials.
	child := osexec.Command(os.Args[0])
	child.Env = append(os.Environ(), reg.Env()...)
	child.Env = append(child.Env, helperEnv+"="+reg.URL()+"/v2/harness/small/manifests/v1")
	out, err := child.Output()
	if err != nil {
		t.Fatalf("child fetch with Env() %v: %v (%s)", reg.Env(), err, exitStderr(err))
	}
	if got := strings.TrimSpace(string(out)); got != im.manifestDigest() {
		t.Errorf("child fetch: digest %s, want %s", got, im.manifestDigest())
	}

	// Stop leaves nothing running and nothing listening; Restart serves the
	// same storage at the same address.
	pid := reg.proc.pid()
	reg.Stop()
	if pids := processesWith(t, reg.configFile); len(pids) != 0 {
		t.Errorf("after Stop, processes %v still run %s", pids, reg.configFile)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		t.Errorf("after Stop, pid %d still exists", pid)
	}
	if _, _, err := get(t, &reg.Endpoint, "GET", "/v2/", true); err == nil {
		t.Errorf("GET /v2/ after Stop succeeded, want a connection error")
	}
	reg.Stop() // idempotent
	reg.Restart()
	resp, body, err := get(t, &reg.Endpoint, "GET", "/v2/harness/small/manifests/v1", true)
	if err != nil || resp.StatusCode != http.StatusOK || digestOf(body) != im.manifestDigest() {
		t.Errorf("after Restart, GET manifest = %v, %v; want 200 with digest %s", resp, err, im.manifestDigest())
	}
}

func TestRegistryPlain(t *testing.T) {
	t.Parallel()
	reg := StartRegistry(t, RegistryOptions{})
	RequireTool(t, "skopeo")
	if reg.Scheme() != "http" || reg.CAFile != "" || reg.CertDir != "" || reg.User != "" {
		t.Errorf("plain registry endpoint = %+v, want http without CA or credentials", reg.Endpoint)
	}
	if env := reg.Env(); len(env) != 1 || !strings.HasPrefix(env[0], "DOCKER_CONFIG=") {
		t.Errorf("Env() = %v, want only DOCKER_CONFIG", env)
	}
	var cfg struct{ Auths map[string]any }
	data, err := os.ReadFile(filepath.Join(reg.DockerConfigDir, "config.json"))
	if err == nil {
		err = json.Unmarshal(data, &cfg)
	}
	if err != nil || cfg.Auths == nil || len(cfg.Auths) != 0 {
		t.Errorf("docker config %s = %v, %v; want empty auths", data, cfg, err)
	}
	if resp, _, err := get(t, &reg.Endpoint, "GET", "/v2/", false); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/ = %v, %v; want 200", resp, err)
	}
	im := writeTestImage(t, 1024)
	pushTestImage(t, &reg.Endpoint, im, "plain/img")
	raw := runTool(t, "skopeo", append(append([]string{"inspect", "--raw"}, reg.SkopeoArgs()...), "docker://"+reg.Ref("plain/img:v1"))...)
	if got, want := digestOf(raw), im.manifestDigest(); got != want {
		t.Errorf("skopeo inspect --raw: manifest digest %s, want %s", got, want)
	}
}

// TestRegistryCleanup checks that the registry of a finished test is gone.
func TestRegistryCleanup(t *testing.T) {
	t.Parallel()
	var configFile string
	var pid int
	t.Run("registry", func(t *testing.T) {
		reg := StartRegistry(t, RegistryOptions{TLS: true, Auth: true})
		configFile, pid = reg.configFile, reg.proc.pid()
		if pids := processesWith(t, configFile); len(pids) != 1 || pids[0] != pid {
			t.Fatalf("processes running %s = %v, want [%d]", configFile, pids, pid)
		}
	})
	if configFile == "" {
		return // the subtest skipped or failed
	}
	if pids := processesWith(t, configFile); len(pids) != 0 {
		t.Errorf("after the test, processes %v still run %s", pids, configFile)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		t.Errorf("after the test, pid %d still exists", pid)
	}
}

// TestRegistryPortTaken checks that a start on a taken port reports
// errAddrInUse (StartRegistry then retries on another port) and that
// Restart comes back on the same address once it is free.
func TestRegistryPortTaken(t *testing.T) {
	t.Parallel()
	reg := StartRegistry(t, RegistryOptions{})
	reg.Stop()
	ln, err := net.Listen("tcp", reg.Addr)
	if err != nil {
		t.Fatalf("take the stopped registry's port: %v", err)
	}
	if err := reg.start(); !errors.Is(err, errAddrInUse) {
		t.Errorf("start on a taken port = %v, want errAddrInUse", err)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	reg.Restart()
	if resp, _, err := get(t, &reg.Endpoint, "GET", "/v2/", false); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v2/ after Restart = %v, %v; want 200", resp, err)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}
