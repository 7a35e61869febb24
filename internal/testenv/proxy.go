package testenv

import (
	"crypto/tls"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// ProxyOptions configures [StartFaultProxy]. The zero value serves TLS
// exactly when the upstream does.
type ProxyOptions struct {
	// PlainHTTP serves plain HTTP even in front of a TLS upstream.
	PlainHTTP bool
}

// Request is one request a [FaultProxy] handled, as the client saw it.
// The proxy updates it before the client can observe what it records (a
// status before its headers are sent, bytes before they are written), so a
// client that has seen a response never finds it missing from the counts.
type Request struct {
	Method string
	Path   string
	Kind   RequestKind
	Repo   string    // repository named by the path, if any
	Fault  FaultKind // the fault applied (FaultNone when passed through)
	Status int       // status sent to the client; 0 if none was sent
	Bytes  int64     // response body bytes sent to the client
}

// countsAsBlobData reports whether the request's body bytes are blob data
// downloaded: a successful GET of /v2/<name>/blobs/<digest>.
func (r *Request) countsAsBlobData() bool {
	return r.Method == http.MethodGet && r.Kind == KindBlob && r.Status >= 200 && r.Status < 300
}

// FaultProxy is a reverse proxy on 127.0.0.1 in front of a registry that
// counts what goes through it and injects faults following [Rule]s. The
// embedded [Endpoint] describes the proxy (its address, the upstream's CA
// and credentials), so clients use it in place of the registry. All
// methods are safe for concurrent use.
type FaultProxy struct {
	Endpoint

	upstream *url.URL
	srv      *http.Server
	rp       *httputil.ReverseProxy
	log      procLog

	mu        sync.Mutex
	rules     []*ruleState
	reqs      []*Request // in the order they started
	gen       int        // incremented by ResetStats
	blobBytes int64
	active    int        // handlers running
	closed    bool       // Stop has begun
	idle      *sync.Cond // signalled when active drops to 0 after closed
}

// StartFaultProxy starts a proxy for t in front of upstream (a [Registry]'s
// Endpoint or another proxy's) and stops it in t.Cleanup. It serves TLS
// with a certificate from the upstream's CA when the upstream serves TLS,
// unless opts.PlainHTTP is set; either way it trusts that CA towards the
// upstream.
//
// The registry builds absolute Location URLs (upload sessions) from the
// X-Forwarded-Host and X-Forwarded-Proto headers the proxy sets, so they
// point back at the proxy; any Location or WWW-Authenticate header that
// still names the upstream is rewritten too. (With htpasswd auth the
// challenge is `Basic realm="…"`, which names no URL.)
func StartFaultProxy(t testing.TB, upstream Endpoint, opts ProxyOptions) *FaultProxy {
	t.Helper()
	if upstream.CAFile != "" && upstream.ca == nil {
		t.Fatalf("start fault proxy: upstream %s has a CA file but was not made by StartRegistry or StartFaultProxy", upstream.Addr)
	}
	up, err := url.Parse(upstream.URL())
	if err != nil {
		t.Fatalf("start fault proxy: parse upstream URL: %v", err)
	}
	p := &FaultProxy{upstream: up}
	p.idle = sync.NewCond(&p.mu)
	p.User, p.Password = upstream.User, upstream.Password
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("start fault proxy: %v", err)
	}
	p.Addr = ln.Addr().String()
	if upstream.ca != nil && !opts.PlainHTTP {
		p.ca, p.CAFile, p.CertDir = upstream.ca, upstream.CAFile, upstream.CertDir
		ln = tls.NewListener(ln, upstream.ca.serverConfig(t))
	}
	p.writeDockerConfig(t)

	errLog := log.New(&p.log, "", log.Ltime|log.Lmicroseconds)
	tr := upstream.Transport()
	tr.DisableCompression = true // never change the bytes being counted
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      tr,
		FlushInterval:  -1, // pass bytes on as they come: a reset cuts where it says
		ModifyResponse: p.modifyResponse,
		ErrorLog:       errLog,
	}
	p.srv = &http.Server{
		Handler:           p,
		ErrorLog:          errLog,
		ReadHeaderTimeout: time.Minute,
		// HTTP/1.1 only, like docker-registry, so connections can be reset.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	go p.srv.Serve(ln) //nolint:errcheck // returns ErrServerClosed after Stop

	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("fault proxy at %s → %s log:\n%s", p.URL(), up, p.log.String())
		}
	})
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		p.Stop()
	})
	return p
}

// Add appends rules to the proxy's fault plan; see [Rule] for the order.
func (p *FaultProxy) Add(rules ...Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range rules {
		left := r.Times
		if left <= 0 {
			left = -1
		}
		p.rules = append(p.rules, &ruleState{Rule: r, left: left})
	}
}

// Clear removes every rule: later requests pass through unchanged.
func (p *FaultProxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
}

// Requests returns the requests received since the start or
// [FaultProxy.ResetStats], in the order they arrived, including those in
// progress.
func (p *FaultProxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Request, len(p.reqs))
	for i, r := range p.reqs {
		out[i] = *r
	}
	return out
}

// Count returns how many requests with method and kind were received
// since the start or [FaultProxy.ResetStats]; "" matches any method or
// kind.
func (p *FaultProxy) Count(method string, kind RequestKind) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.reqs {
		if (method == "" || r.Method == method) && (kind == "" || r.Kind == kind) {
			n++
		}
	}
	return n
}

// BlobBytes returns the body bytes sent for successful (2xx) GET requests
// of blobs, /v2/<name>/blobs/<digest>, since the start or
// [FaultProxy.ResetStats]: the blob data (layers, configs, artifact blobs)
// clients downloaded.
func (p *FaultProxy) BlobBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.blobBytes
}

// ResetStats forgets the requests and blob bytes counted so far, those of
// requests still in progress included; the rules stay.
func (p *FaultProxy) ResetStats() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reqs, p.blobBytes = nil, 0
	p.gen++
}

// Stop closes the listener and every connection and waits for running
// handlers to return. Later connections are refused, as by a registry that
// is down. It is idempotent.
func (p *FaultProxy) Stop() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	// Close cancels the contexts of running requests (a Delay ends early).
	_ = p.srv.Close()
	p.mu.Lock()
	for p.active > 0 {
		p.idle.Wait()
	}
	p.mu.Unlock()
}

// ServeHTTP applies the first matching rule to one request and records it.
func (p *FaultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fw, ok := p.begin(w, r)
	if !ok {
		dropConn(w)
		return
	}
	// Deferred: ReverseProxy aborts with a panic when the body copy fails.
	defer p.end(fw)
	fault := fw.fault
	if fault.Delay > 0 {
		timer := time.NewTimer(fault.Delay)
		select {
		case <-timer.C:
		case <-r.Context().Done():
			timer.Stop()
			return
		}
	}
	switch fault.Kind {
	case FaultStatus:
		writeRegistryError(fw, fw.rec.Kind, fault.Status)
	case FaultDrop:
		dropConn(w)
	default:
		p.rp.ServeHTTP(fw, r)
	}
}

// begin records a new request, counts its handler as running and picks its
// fault; ok is false once Stop has begun.
func (p *FaultProxy) begin(w http.ResponseWriter, r *http.Request) (fw *faultWriter, ok bool) {
	kind, repo := classify(r.URL.Path)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, false
	}
	p.active++
	var fault Fault
	for _, s := range p.rules {
		if s.matches(r, kind) {
			if s.left > 0 {
				s.left--
			}
			fault = s.Fault
			break
		}
	}
	rec := &Request{Method: r.Method, Path: r.URL.Path, Kind: kind, Repo: repo, Fault: fault.Kind}
	p.reqs = append(p.reqs, rec)
	return &faultWriter{ResponseWriter: w, p: p, rec: rec, gen: p.gen, fault: fault, corruptAt: -1}, true
}

// setStatus records the status of a request about to send its headers.
func (p *FaultProxy) setStatus(fw *faultWriter, status int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fw.rec.Status = status
}

// addBytes records n body bytes about to be sent (n < 0 corrects a short
// write), counted before the client can read them.
func (p *FaultProxy) addBytes(fw *faultWriter, n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fw.rec.Bytes += n
	if fw.gen == p.gen && fw.rec.countsAsBlobData() {
		p.blobBytes += n
	}
}

// end logs a finished request and releases Stop when it is the last.
func (p *FaultProxy) end(fw *faultWriter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rec := fw.rec
	fmt.Fprintf(&p.log, "%s %s %s → %d, %d body bytes, fault %s\n",
		time.Now().Format("15:04:05.000000"), rec.Method, rec.Path, rec.Status, rec.Bytes, rec.Fault)
	p.active--
	if p.closed && p.active == 0 {
		p.idle.Broadcast()
	}
}

// rewrite sends the request upstream but keeps the client's Host and adds
// X-Forwarded-*, from which distribution builds its absolute URLs.
func (p *FaultProxy) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(p.upstream)
	pr.Out.Host = pr.In.Host
	pr.SetXForwarded()
}

// modifyResponse rewrites any upstream URL left in headers to the proxy's.
func (p *FaultProxy) modifyResponse(resp *http.Response) error {
	if loc := resp.Header.Get("Location"); loc != "" {
		if u, err := url.Parse(loc); err == nil && u.Host == p.upstream.Host {
			u.Scheme, u.Host = p.Scheme(), p.Addr
			resp.Header.Set("Location", u.String())
		}
	}
	if vals := resp.Header.Values("Www-Authenticate"); len(vals) > 0 {
		resp.Header.Del("Www-Authenticate")
		for _, v := range vals {
			resp.Header.Add("Www-Authenticate", strings.ReplaceAll(v, p.upstream.String(), p.URL()))
		}
	}
	return nil
}
