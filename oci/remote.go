package oci

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/singleflight"
)

// Registry access (pull, push, artifacts, lazy blobs) goes through
// go-containerregistry's remote package. This file holds what those share:
// the configuration [Open]'s options set, reference parsing, retries and
// the error type.

const (
	userAgent = "minibuild"
	// defaultJobs is how many blobs move at once when a request says 0.
	defaultJobs = 4
)

// ErrUnauthorized: the registry refused the credentials (401) or the access
// (403). Retrying does not help; fix the Docker config or the permissions.
var ErrUnauthorized = errors.New("unauthorized")

// remoteConfig is what the registry options of [Open] set.
type remoteConfig struct {
	transport http.RoundTripper
	keychain  authn.Keychain
	insecure  []string
	backoff   *remote.Backoff
}

// WithTransport makes registry requests go through rt instead of
// go-containerregistry's default transport (proxy from the environment,
// the system's CA pool, which on Linux honours SSL_CERT_FILE and
// SSL_CERT_DIR). Retries and authentication are layered on top of rt.
func WithTransport(rt http.RoundTripper) Option {
	return func(o *options) {
		if rt != nil {
			o.remote.transport = rt
		}
	}
}

// WithKeychain sets where registry credentials come from. The default is
// authn.DefaultKeychain: the Docker config file ($DOCKER_CONFIG/config.json,
// else ~/.docker/config.json) with its credential helpers, anonymous for
// registries it does not list.
func WithKeychain(k authn.Keychain) Option {
	return func(o *options) {
		if k != nil {
			o.remote.keychain = k
		}
	}
}

// WithInsecureRegistries names registries ("host" or "host:port", as in
// image references) that may be reached over plain HTTP, or over HTTPS
// without verifying the certificate, like Docker's --insecure-registry.
// HTTPS is tried first. Registries on localhost and 127.0.0.0/8 fall back
// to plain HTTP without being named here (go-containerregistry's rule), but
// their certificates are verified unless they are named.
func WithInsecureRegistries(hosts ...string) Option {
	return func(o *options) {
		for _, h := range hosts {
			if h = strings.TrimSpace(h); h != "" {
				o.remote.insecure = append(o.remote.insecure, h)
			}
		}
	}
}

// WithRetryBackoff sets how transient registry failures (5xx, 429, 408,
// connections reset or dropped, a download cut short) are retried:
// b.Steps attempts in all, sleeping b.Duration, then b.Duration×b.Factor, …
// in between. The default is 3 attempts, 1s and 3s apart.
func WithRetryBackoff(b remote.Backoff) Option {
	return func(o *options) {
		o.remote.backoff = &b
	}
}

// remoteClient is a Store's registry configuration, resolved once.
type remoteClient struct {
	keychain  authn.Keychain
	transport http.RoundTripper
	insecure  map[string]bool
	backoff   remote.Backoff
	fetches   singleflight.Group // FetchBlob, keyed by digest
}

func newRemoteClient(c remoteConfig) *remoteClient {
	rc := &remoteClient{
		keychain:  c.keychain,
		transport: c.transport,
		insecure:  map[string]bool{},
		backoff:   remote.Backoff{Duration: time.Second, Factor: 3, Jitter: 0.1, Steps: 3},
	}
	if rc.keychain == nil {
		rc.keychain = authn.DefaultKeychain
	}
	if rc.transport == nil {
		rc.transport = remote.DefaultTransport
	}
	if c.backoff != nil {
		rc.backoff = *c.backoff
	}
	if rc.backoff.Steps < 1 {
		rc.backoff.Steps = 1
	}
	for _, h := range c.insecure {
		rc.insecure[h] = true
	}
	if len(rc.insecure) > 0 {
		rc.transport = newInsecureTransport(rc.transport, rc.insecure)
	}
	return rc
}

// insecureTransport skips certificate verification for the registries
// named insecure and passes everything else on unchanged.
type insecureTransport struct {
	secure, insecure http.RoundTripper
	hosts            map[string]bool
}

var _ http.RoundTripper = (*insecureTransport)(nil)

func newInsecureTransport(base http.RoundTripper, hosts map[string]bool) http.RoundTripper {
	t := &insecureTransport{secure: base, insecure: base, hosts: hosts}
	if ht, ok := base.(*http.Transport); ok {
		it := ht.Clone()
		if it.TLSClientConfig == nil {
			it.TLSClientConfig = &tls.Config{}
		}
		it.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // the user named this registry insecure
		t.insecure = it
	}
	return t
}

func (t *insecureTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.hosts[r.URL.Host] {
		return t.insecure.RoundTrip(r)
	}
	return t.secure.RoundTrip(r)
}

// jobsOr is n, or defaultJobs for a request that says 0.
func jobsOr(n int) int {
	if n <= 0 {
		return defaultJobs
	}
	return n
}

// options are the go-containerregistry options of one operation.
func (c *remoteClient) options(ctx context.Context, jobs int) []remote.Option {
	jobs = jobsOr(jobs)
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(c.keychain),
		remote.WithTransport(c.transport),
		remote.WithUserAgent(userAgent),
		remote.WithRetryBackoff(c.backoff),
		remote.WithRetryPredicate(retryable),
		remote.WithRetryStatusCodes(retryStatusCodes()...),
		remote.WithJobs(jobs),
	}
}

// nameOptions marks a registry named insecure for go-containerregistry,
// which then also tries plain HTTP.
func (c *remoteClient) nameOptions(registry string) []name.Option {
	if c.insecure[registry] {
		return []name.Option{name.Insecure}
	}
	return nil
}

// reference parses a normalized image name (see [ParseName]).
func (c *remoteClient) reference(n string) (name.Reference, error) {
	ref, err := name.ParseReference(n, c.nameOptions(registryOf(n))...)
	if err != nil {
		return nil, fmt.Errorf("image name %q: %w: %w", n, ErrInvalid, err)
	}
	return ref, nil
}

// repository parses a normalized repository ("127.0.0.1:5000/app").
func (c *remoteClient) repository(repo string) (name.Repository, error) {
	r, err := name.NewRepository(repo, c.nameOptions(registryOf(repo))...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("repository %q: %w: %w", repo, ErrInvalid, err)
	}
	return r, nil
}

// registryOf is the registry part of a normalized name or repository.
func registryOf(n string) string {
	reg, _, _ := strings.Cut(n, "/")
	return reg
}

// normalizeRepo spells a repository the way [ParseName] does
// ("busybox" → "docker.io/library/busybox").
func normalizeRepo(repo string) (string, error) {
	if strings.ContainsAny(repo, "@") {
		return "", fmt.Errorf("repository %q: %w: has a digest", repo, ErrInvalid)
	}
	if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
		return "", fmt.Errorf("repository %q: %w: has a tag", repo, ErrInvalid)
	}
	n, err := ParseName(repo)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(n, ":latest"), nil
}

// repoName is a ggcr repository spelled the way [ParseName] does.
func repoName(r name.Repository) string {
	n, err := normalizeRepo(r.Name())
	if err != nil {
		return r.Name()
	}
	return n
}

// retryStatusCodes are the statuses worth another attempt: the registry or
// something in front of it is overloaded or restarting.
func retryStatusCodes() []int {
	return []int{
		http.StatusRequestTimeout,
		http.StatusTooManyRequests,
		http.StatusInternalServerError,
		http.StatusBadGateway,
		http.StatusServiceUnavailable,
		http.StatusGatewayTimeout,
	}
}

// retryable reports errors another attempt may cure: the statuses above
// and network failures (reset, dropped, timed out, cut short). Refused
// connections, TLS and auth failures, 404s and bad content fail at once.
func retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, ErrDigestMismatch) || errors.Is(err, ErrSizeMismatch) {
		return false
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return slices.Contains(retryStatusCodes(), te.StatusCode) || te.Temporary()
	}
	return retryableNet(err)
}

// retryableNet reports network failures worth another attempt.
func retryableNet(err error) bool {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return false // nothing listens: the registry is down, not flaky
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// retryBody runs f, a transfer whose body may break after its headers came
// (which go-containerregistry does not retry), until it succeeds, fails for
// good or the backoff is used up. onRetry hears about each new attempt.
func (c *remoteClient) retryBody(ctx context.Context, onRetry func(error), f func() error) error {
	b := c.backoff
	for attempt := 1; ; attempt++ {
		err := f()
		var te *transport.Error
		if err == nil || attempt >= c.backoff.Steps || errors.As(err, &te) || !retryableNet(err) || ctx.Err() != nil {
			// A transport.Error was retried by go-containerregistry already.
			return err
		}
		if onRetry != nil {
			onRetry(err)
		}
		t := time.NewTimer(b.Step())
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
	}
}

// RemoteError is a registry operation that failed, after any retries. It
// names the registry, the repository and, when the failure concerns one
// blob or manifest, its digest. Err wraps [ErrUnauthorized] (401, 403),
// [ErrNotFound] (404), [ErrDigestMismatch] or [ErrSizeMismatch] (bad
// content) when those apply.
type RemoteError struct {
	Op         string  // "pull", "push", "fetch blob", "check", …
	Name       string  // the reference or repository as used ("127.0.0.1:5000/app:v1")
	Registry   string  // "127.0.0.1:5000", "docker.io"
	Repository string  // "app", "library/busybox"
	Object     string  // "manifest", "config", "layer", "blob"; "" with a zero Digest
	Digest     v1.Hash // zero when the failure is not about one object
	Err        error
}

func (e *RemoteError) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(" ")
	b.WriteString(e.Name)
	if e.Digest != (v1.Hash{}) {
		b.WriteString(": ")
		if e.Object != "" {
			b.WriteString(e.Object)
			b.WriteString(" ")
		}
		b.WriteString(e.Digest.String())
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *RemoteError) Unwrap() error { return e.Err }

// remoteErr wraps err from an operation on repo (and object d, if not
// zero) into a *RemoteError with the sentinel that applies.
func remoteErr(op, nm string, repo name.Repository, object string, d v1.Hash, err error) error {
	if err == nil {
		return nil
	}
	var re *RemoteError
	if errors.As(err, &re) {
		return err
	}
	return &RemoteError{
		Op: op, Name: nm, Registry: registryName(repo), Repository: repo.RepositoryStr(),
		Object: object, Digest: d, Err: classify(repo, err),
	}
}

// registryName spells Docker Hub the way minibuild's names do.
func registryName(repo name.Repository) string {
	if r := repo.RegistryStr(); r != name.DefaultRegistry {
		return r
	}
	return dockerHub
}

// classify adds the sentinel errors callers branch on and says in words
// what a bare network error means.
func classify(repo name.Repository, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%w: %w", ErrUnauthorized, err)
		case http.StatusNotFound:
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		}
		if retryable(err) {
			return fmt.Errorf("%w (gave up after retries)", err)
		}
		return err
	}
	var ce *tls.CertificateVerificationError
	if errors.As(err, &ce) {
		return fmt.Errorf("%w (trust its CA through SSL_CERT_FILE or the system store, or allow it as an insecure registry)", err)
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return fmt.Errorf("cannot reach registry %s: %w", registryName(repo), err)
	}
	return err
}
