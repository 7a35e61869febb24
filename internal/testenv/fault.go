package testenv

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RequestKind classifies a registry API request by its path, after the
// endpoints of the OCI distribution spec.
type RequestKind string

// The request kinds a [FaultProxy] tells apart.
const (
	KindPing      RequestKind = "ping"      // /v2/
	KindCatalog   RequestKind = "catalog"   // /v2/_catalog
	KindManifest  RequestKind = "manifest"  // /v2/<name>/manifests/<reference>
	KindBlob      RequestKind = "blob"      // /v2/<name>/blobs/<digest>
	KindUpload    RequestKind = "upload"    // /v2/<name>/blobs/uploads/[<id>]
	KindTags      RequestKind = "tags"      // /v2/<name>/tags/list
	KindReferrers RequestKind = "referrers" // /v2/<name>/referrers/<digest>
	KindOther     RequestKind = "other"     // anything else
)

// classify returns the kind of a request path and the repository it names
// ("" for ping, catalog and other). Repository names may contain slashes,
// so the endpoint is found from the end of the path.
func classify(path string) (RequestKind, string) {
	switch path {
	case "/v2/", "/v2":
		return KindPing, ""
	case "/v2/_catalog":
		return KindCatalog, ""
	}
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return KindOther, ""
	}
	if repo, ok := strings.CutSuffix(rest, "/tags/list"); ok && repo != "" {
		return KindTags, repo
	}
	for _, e := range []struct {
		sep  string
		kind RequestKind
	}{
		{"/blobs/uploads", KindUpload},
		{"/manifests/", KindManifest},
		{"/blobs/", KindBlob},
		{"/referrers/", KindReferrers},
	} {
		i := strings.LastIndex(rest, e.sep)
		if i <= 0 {
			continue
		}
		tail := rest[i+len(e.sep):]
		if e.kind == KindUpload {
			// "/blobs/uploads/" starts an upload, "/blobs/uploads/<id>" continues it.
			if tail == "" || (tail[0] == '/' && !strings.Contains(tail[1:], "/")) {
				return KindUpload, rest[:i]
			}
			continue
		}
		if tail != "" && !strings.Contains(tail, "/") {
			return e.kind, rest[:i]
		}
	}
	return KindOther, ""
}

// FaultKind is what a [FaultProxy] does to a request a [Rule] selects.
type FaultKind int

// The faults a [FaultProxy] can inject.
const (
	// FaultNone forwards the request and its response unchanged.
	FaultNone FaultKind = iota
	// FaultStatus answers with Fault.Status and a registry-style JSON
	// error body without forwarding the request. A 401 carries the
	// registry's Basic challenge.
	FaultStatus
	// FaultReset forwards the request, sends the response headers and at
	// most Fault.Offset body bytes, then resets the TCP connection (RST)
	// if the body was longer.
	FaultReset
	// FaultCorrupt forwards the request and inverts the body byte at
	// Fault.Offset (clamped to the last byte when the length is known): the
	// length is right, the digest is not.
	FaultCorrupt
	// FaultDrop resets the connection without answering, as a crashed
	// registry does. Go's transport silently retries an idempotent request
	// once when a reused keep-alive connection drops before any response;
	// such a retry is a new request to the proxy.
	FaultDrop
)

// String returns the fault's name as used in the proxy's request log.
func (k FaultKind) String() string {
	switch k {
	case FaultNone:
		return "none"
	case FaultStatus:
		return "status"
	case FaultReset:
		return "reset"
	case FaultCorrupt:
		return "corrupt"
	case FaultDrop:
		return "drop"
	}
	return "FaultKind(" + strconv.Itoa(int(k)) + ")"
}

// Fault describes one injected failure. The zero value forwards the request
// unchanged.
type Fault struct {
	Kind   FaultKind
	Status int   // FaultStatus: the HTTP status to answer with
	Offset int64 // FaultReset: body bytes sent first; FaultCorrupt: byte to invert
	// Delay holds the request this long (or until the client gives up)
	// before the fault applies; with FaultNone it makes a slow registry.
	Delay time.Duration
}

// FailWith returns a fault answering with status (500, 502, 503, 401,
// 403, 404, 429…) instead of forwarding.
func FailWith(status int) Fault { return Fault{Kind: FaultStatus, Status: status} }

// ResetAfter returns a fault resetting the connection after n body bytes.
func ResetAfter(n int64) Fault { return Fault{Kind: FaultReset, Offset: n} }

// CorruptAt returns a fault inverting the body byte at offset.
func CorruptAt(offset int64) Fault { return Fault{Kind: FaultCorrupt, Offset: offset} }

// Drop returns a fault closing the connection without a response.
func Drop() Fault { return Fault{Kind: FaultDrop} }

// Slow returns a fault forwarding the request unchanged after d.
func Slow(d time.Duration) Fault { return Fault{Delay: d} }

// Rule selects requests and the fault to apply to them. Empty fields match
// anything. Rules are tried in the order they were added; the first
// matching rule with requests left applies, so
//
//	p.Add(
//		testenv.Rule{Method: "GET", Kind: testenv.KindBlob, Times: 2},
//		testenv.Rule{Method: "GET", Kind: testenv.KindBlob, Fault: testenv.FailWith(500)},
//	)
//
// lets two blob downloads through and fails every later one.
type Rule struct {
	Method       string      // such as "GET" or "HEAD"
	Kind         RequestKind // such as KindBlob
	PathContains string      // a substring of the URL path, such as a digest
	// Match, when set, must also return true. It runs with the proxy's
	// lock held, for every request the other fields match, and must not
	// modify r.
	Match func(r *http.Request) bool
	// Times is how many requests the rule applies to; zero or less means
	// every matching request.
	Times int
	Fault Fault
}

// ruleState is a rule and the number of requests it still applies to.
type ruleState struct {
	Rule
	left int // < 0: unlimited
}

func (s *ruleState) matches(r *http.Request, kind RequestKind) bool {
	switch {
	case s.left == 0,
		s.Method != "" && s.Method != r.Method,
		s.Kind != "" && s.Kind != kind,
		s.PathContains != "" && !strings.Contains(r.URL.Path, s.PathContains),
		s.Match != nil && !s.Match(r):
		return false
	}
	return true
}
