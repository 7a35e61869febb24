package testenv

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// Endpoint is everything a client needs to reach a registry started by
// [StartRegistry] or a proxy started by [StartFaultProxy]: the address, the
// trust root and the credentials, both as values for in-process clients and
// as files for child processes (minibuild, skopeo). Only this package
// makes TLS endpoints; a hand-made one can describe a plain-HTTP server.
type Endpoint struct {
	// Addr is "127.0.0.1:PORT", the registry part of image references.
	Addr string
	// CAFile is the PEM certificate of the CA that signed the server
	// certificate (valid for 127.0.0.1, ::1 and localhost); "" for plain HTTP.
	CAFile string
	// CertDir contains only ca.crt: a containers-style certificate directory
	// for skopeo's --cert-dir, --src-cert-dir and --dest-cert-dir; "" for
	// plain HTTP.
	CertDir string
	// User and Password are the basic-auth credentials; both "" when the
	// registry does not require authentication.
	User, Password string
	// DockerConfigDir contains a config.json whose "auths" holds the
	// credentials for Addr (and nothing else, so a user's own Docker config
	// never leaks into a test). Point DOCKER_CONFIG at it and
	// go-containerregistry's authn.DefaultKeychain finds the credentials.
	DockerConfigDir string

	ca *testCA // nil for plain HTTP
}

// Scheme returns "https" when the endpoint serves TLS and "http" otherwise.
func (e *Endpoint) Scheme() string {
	if e.ca != nil {
		return "https"
	}
	return "http"
}

// URL returns the endpoint's base URL, such as "https://127.0.0.1:41234".
func (e *Endpoint) URL() string {
	return e.Scheme() + "://" + e.Addr
}

// Ref returns the image reference for repo (with an optional ":tag" or
// "@digest") on this endpoint, such as "127.0.0.1:41234/app:v1".
func (e *Endpoint) Ref(repo string) string {
	return e.Addr + "/" + repo
}

// Env returns the environment variables a child process needs to push to
// and pull from the endpoint with Go's TLS stack and Docker's credential
// lookup; append them to os.Environ() (later entries win in os/exec):
//
//   - DOCKER_CONFIG, the directory of a config.json with the credentials;
//   - SSL_CERT_FILE, the CA file, with TLS only. On Linux Go's crypto/x509
//     reads it instead of the distribution's CA bundle file when it builds
//     the system pool (the /etc/ssl/certs directory is still read), so the
//     default transports of net/http and go-containerregistry trust the
//     test CA. The pool is built once per process: this works for child
//     processes, not for setting in a running test.
func (e *Endpoint) Env() []string {
	env := []string{"DOCKER_CONFIG=" + e.DockerConfigDir}
	if e.CAFile != "" {
		env = append(env, "SSL_CERT_FILE="+e.CAFile)
	}
	return env
}

// SkopeoArgs returns the flags for a skopeo command that takes one
// docker:// reference to this endpoint (inspect, delete, list-tags).
func (e *Endpoint) SkopeoArgs() []string { return e.skopeoArgs("") }

// SkopeoSrcArgs returns the flags for `skopeo copy` reading from this
// endpoint.
func (e *Endpoint) SkopeoSrcArgs() []string { return e.skopeoArgs("src-") }

// SkopeoDestArgs returns the flags for `skopeo copy` writing to this
// endpoint.
func (e *Endpoint) SkopeoDestArgs() []string { return e.skopeoArgs("dest-") }

func (e *Endpoint) skopeoArgs(prefix string) []string {
	var args []string
	if e.CertDir != "" {
		args = append(args, "--"+prefix+"cert-dir", e.CertDir)
	} else {
		// Without it, containers/image refuses plain HTTP.
		args = append(args, "--"+prefix+"tls-verify=false")
	}
	if e.User != "" {
		args = append(args, "--"+prefix+"creds", e.User+":"+e.Password)
	} else {
		args = append(args, "--"+prefix+"no-creds")
	}
	return args
}

// Transport returns a new HTTP transport, a clone of
// http.DefaultTransport, that trusts the endpoint's CA. In-process clients
// use it directly or through go-containerregistry's remote.WithTransport.
func (e *Endpoint) Transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if e.ca != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: e.ca.pool, MinVersion: tls.VersionTLS12}
	}
	return tr
}

// writeDockerConfig creates DockerConfigDir with a config.json holding the
// credentials for Addr, in the format of Docker's config file: "auth" is
// base64 of "user:password".
func (e *Endpoint) writeDockerConfig(t testing.TB) {
	t.Helper()
	type authEntry struct {
		Auth string `json:"auth"`
	}
	auths := map[string]authEntry{}
	if e.User != "" {
		auths[e.Addr] = authEntry{Auth: base64.StdEncoding.EncodeToString([]byte(e.User + ":" + e.Password))}
	}
	data, err := json.MarshalIndent(map[string]any{"auths": auths}, "", "\t")
	if err != nil {
		t.Fatalf("encode docker config: %v", err)
	}
	e.DockerConfigDir = t.TempDir()
	if err := os.WriteFile(filepath.Join(e.DockerConfigDir, "config.json"), data, 0o600); err != nil {
		t.Fatalf("write docker config: %v", err)
	}
}
