package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// registryUser is the one account in a registry's htpasswd file.
	registryUser = "minibuild"
	// registryRealm is the realm of the registry's Basic challenge.
	registryRealm = "minibuild-test"
	// startTimeout and stopTimeout only guard against a hung process; a
	// registry normally starts and stops in milliseconds.
	startTimeout = 60 * time.Second
	stopTimeout  = 15 * time.Second
	// portAttempts bounds the retries when another process takes the
	// free port between our probe and the registry's bind.
	portAttempts = 8
)

// errAddrInUse is start's report that the port was taken.
var errAddrInUse = errors.New("address already in use")

// RegistryOptions selects how [StartRegistry] configures the registry. The
// zero value is plain HTTP without authentication.
type RegistryOptions struct {
	// TLS serves HTTPS with a server certificate from a CA generated for
	// this registry.
	TLS bool
	// Auth requires HTTP basic authentication against an htpasswd file
	// (bcrypt) holding one user with a random password.
	Auth bool
}

// Registry is a Debian docker-registry (distribution v2) process serving
// on 127.0.0.1 with its own storage, configuration and, optionally, TLS and
// htpasswd authentication. The embedded [Endpoint] tells clients how to
// reach it. It is stopped when the test ends.
type Registry struct {
	Endpoint

	t          testing.TB
	opts       RegistryOptions
	bin        string
	configFile string
	log        procLog

	mu   sync.Mutex // serializes Stop and Restart
	proc *process   // nil while stopped
}

// StartRegistry starts a registry for t and returns once it answers
// GET /v2/. It skips t when docker-registry (or htpasswd, with Auth) is not
// installed, fails it when the registry cannot start, stops the registry in
// t.Cleanup and logs the registry's output only if t failed.
func StartRegistry(t testing.TB, opts RegistryOptions) *Registry {
	t.Helper()
	r := &Registry{t: t, opts: opts, bin: RequireTool(t, "docker-registry")}
	dir := t.TempDir()
	storage := filepath.Join(dir, "storage")
	if err := os.Mkdir(storage, 0o755); err != nil {
		t.Fatalf("create registry storage: %v", err)
	}
	cfg := registryConfig{storage: storage, secret: randomHex(t, 16)}
	if opts.TLS {
		r.ca = newCA(t)
		r.CAFile, r.CertDir = r.ca.file, r.ca.dir
		cfg.certFile, cfg.keyFile = r.ca.writeServerFiles(t, dir)
	}
	if opts.Auth {
		r.User, r.Password = registryUser, randomHex(t, 16)
		cfg.htpasswd = writeHtpasswd(t, dir, r.User, r.Password)
	}
	// Cleanups run last-in first-out: stop the process, then show its
	// output, which is complete once it has exited.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("docker-registry at %s (config %s) output:\n%s", r.Addr, r.configFile, r.log.String())
		}
	})
	t.Cleanup(r.Stop)

	r.configFile = filepath.Join(dir, "config.yml")
	for attempt := 1; ; attempt++ {
		cfg.addr = freeAddr(t)
		if err := os.WriteFile(r.configFile, cfg.yaml(), 0o644); err != nil {
			t.Fatalf("write registry config: %v", err)
		}
		r.Addr = cfg.addr
		err := r.start()
		if err == nil {
			break
		}
		if !errors.Is(err, errAddrInUse) || attempt == portAttempts {
			t.Fatalf("start docker-registry on %s: %v", cfg.addr, err)
		}
	}
	r.writeDockerConfig(t)
	return r
}

// Stop stops the registry: SIGTERM, then SIGKILL if it has not exited
// after a grace period. It is idempotent, and it fails t if the registry
// had already exited on its own. Tests call it to make the registry
// unreachable (an offline rebuild); [Registry.Restart] brings it back at
// the same address with the same storage.
func (r *Registry) Stop() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return
	}
	p := r.proc
	r.proc = nil
	if err := p.stop(stopTimeout); err != nil {
		r.t.Errorf("stop docker-registry at %s: %v", r.Addr, err)
	}
}

// Restart stops the registry if it runs and starts it again at the same
// address with the same storage, credentials and certificates. Like any
// function that can call t.Fatal, it must run on the test's goroutine.
func (r *Registry) Restart() {
	r.t.Helper()
	r.Stop()
	if err := r.start(); err != nil {
		r.t.Fatalf("restart docker-registry on %s: %v", r.Addr, err)
	}
}

// start runs the registry with the current configuration and waits until
// it has bound its address and answered GET /v2/.
func (r *Registry) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cmd := osexec.Command(r.bin, "serve", r.configFile)
	// A fixed environment: distribution reads any REGISTRY_* variable as a
	// configuration override (REGISTRY_PORT set by a CI system breaks it).
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + filepath.Dir(r.configFile)}
	cmd.Dir = filepath.Dir(r.configFile)
	cmd.Stdout, cmd.Stderr = &r.log, &r.log
	// distribution logs this line after its listener is bound.
	w := r.log.watch("listening on " + r.Addr)
	p, err := startProcess(cmd)
	if err != nil {
		return err
	}
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case <-w.ready:
	case <-p.done:
		if r.log.sawAddrInUse(w) {
			return errAddrInUse
		}
		return fmt.Errorf("docker-registry exited before listening: %v", p.err)
	case <-timer.C:
		return errors.Join(fmt.Errorf("docker-registry not listening after %v", startTimeout), p.stop(stopTimeout))
	}
	if err := r.probe(); err != nil {
		return errors.Join(err, p.stop(stopTimeout))
	}
	r.proc = p
	return nil
}

// probe checks that GET /v2/ answers as configured: 401 with a Basic
// challenge when authentication is on, 200 otherwise.
func (r *Registry) probe() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL()+"/v2/", nil)
	if err != nil {
		return fmt.Errorf("probe registry: %w", err)
	}
	tr := r.Transport()
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("probe registry: %w", err)
	}
	resp.Body.Close()
	want := http.StatusOK
	if r.opts.Auth {
		want = http.StatusUnauthorized
	}
	if resp.StatusCode != want || resp.Header.Get("Docker-Distribution-Api-Version") != "registry/2.0" {
		return fmt.Errorf("probe registry: GET /v2/ = %s (API version %q), want %d from registry/2.0",
			resp.Status, resp.Header.Get("Docker-Distribution-Api-Version"), want)
	}
	return nil
}

// registryConfig is the part of distribution's configuration
// (/etc/docker/registry/config.yml format) that tests vary.
type registryConfig struct {
	addr, storage, secret string
	certFile, keyFile     string // TLS when set
	htpasswd              string // basic auth when set
}

// yaml renders the configuration. Strings are written as JSON strings,
// which YAML reads as double-quoted scalars.
func (c registryConfig) yaml() []byte {
	q := func(s string) string {
		b, _ := json.Marshal(s) // a string always encodes
		return string(b)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: %s
  draintimeout: 5s
  headers:
    X-Content-Type-Options: [nosniff]
`, q(c.storage), q(c.addr), q(c.secret))
	if c.certFile != "" {
		fmt.Fprintf(&b, "  tls:\n    certificate: %s\n    key: %s\n", q(c.certFile), q(c.keyFile))
	}
	if c.htpasswd != "" {
		fmt.Fprintf(&b, "auth:\n  htpasswd:\n    realm: %s\n    path: %s\n", q(registryRealm), q(c.htpasswd))
	}
	return []byte(b.String())
}

// writeHtpasswd writes an htpasswd file with one bcrypt entry, the only
// hash distribution accepts, made by Apache's htpasswd.
func writeHtpasswd(t testing.TB, dir, user, password string) string {
	t.Helper()
	bin := RequireTool(t, "htpasswd")
	cmd := osexec.Command(bin, "-n", "-B", "-i", user) // -i: password on stdin
	cmd.Stdin = strings.NewReader(password)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("htpasswd -nBi %s: %v", user, errors.Join(err, exitStderr(err)))
	}
	path := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatalf("write htpasswd: %v", err)
	}
	return path
}

func exitStderr(err error) error {
	var ee *osexec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return errors.New(strings.TrimSpace(string(ee.Stderr)))
	}
	return nil
}

// freeAddr returns 127.0.0.1:PORT for a port that was free a moment ago;
// the caller retries with a new one if it is taken before it binds.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	return addr
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("read random bytes: %v", err)
	}
	return hex.EncodeToString(b)
}

// process is a started server process and its wait result.
type process struct {
	cmd  *osexec.Cmd
	done chan struct{} // closed once Wait has returned
	err  error         // Wait's result, readable after done
}

// startProcess starts cmd in its own process group (a Ctrl-C meant for the
// test does not reach it directly) with SIGKILL as its parent-death signal, so a test binary killed by -timeout leaves no server
// behind. The kernel sends that signal when the forking *thread* exits, so
// the goroutine that starts and waits stays locked to its thread for the
// child's lifetime.
func startProcess(cmd *osexec.Cmd) (*process, error) {
	cmd.SysProcAttr = serverProcAttr()
	p := &process{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- fmt.Errorf("start %s: %w", filepath.Base(cmd.Path), err)
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// pid returns the process id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM, escalates to SIGKILL after grace, and waits. It
// reports a process that had already exited on its own, since a server
// dying under a test is a failure worth seeing. Signals go through
// os.Process (a pidfd on Linux), never to a pid that may have been reused.
func (p *process) stop(grace time.Duration) error {
	select {
	case <-p.done:
		return fmt.Errorf("exited unexpectedly: %v", p.err)
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal pid %d: %w", p.pid(), err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		_ = p.cmd.Process.Kill() // ErrProcessDone: it just exited
		<-p.done
	}
	return nil
}
