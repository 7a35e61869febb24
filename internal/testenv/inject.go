package testenv

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
)

// registryErrorCode returns the distribution error code a registry sends
// with status for a request of kind.
func registryErrorCode(status int, kind RequestKind) string {
	switch status {
	case http.StatusUnauthorized:
		return "UNAUTHORIZED"
	case http.StatusForbidden:
		return "DENIED"
	case http.StatusTooManyRequests:
		return "TOOMANYREQUESTS"
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	case http.StatusNotFound:
		switch kind {
		case KindManifest:
			return "MANIFEST_UNKNOWN"
		case KindBlob:
			return "BLOB_UNKNOWN"
		case KindUpload:
			return "BLOB_UPLOAD_UNKNOWN"
		}
		return "NAME_UNKNOWN"
	}
	return "UNKNOWN"
}

// writeRegistryError answers like distribution does: a JSON error list,
// and the Basic challenge with a 401.
func writeRegistryError(w http.ResponseWriter, kind RequestKind, status int) {
	body, _ := json.Marshal(map[string]any{"errors": []map[string]string{{
		"code":    registryErrorCode(status, kind),
		"message": "injected by the fault proxy",
	}}}) // plain maps of strings always encode
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Docker-Distribution-Api-Version", "registry/2.0")
	if status == http.StatusUnauthorized {
		h.Set("Www-Authenticate", `Basic realm="`+registryRealm+`"`)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// errInjectedReset is what a faultWriter returns after it reset the
// connection; ReverseProxy then aborts the handler.
var errInjectedReset = errors.New("connection reset by the fault proxy")

// faultWriter records the response a client gets and applies body faults
// on the way. Only the handler's goroutine uses it; the record it updates
// is shared through the proxy's lock.
type faultWriter struct {
	http.ResponseWriter
	p         *FaultProxy
	rec       *Request
	gen       int // the proxy's stats generation when the request began
	fault     Fault
	status    int   // first final status written
	n         int64 // body bytes written
	corruptAt int64 // body offset to invert, -1 for none
	reset     bool
}

func (w *faultWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
		w.p.setStatus(w, code)
		if w.fault.Kind == FaultCorrupt {
			w.corruptAt = w.fault.Offset
			if cl := contentLength(w.Header()); cl > 0 && w.corruptAt >= cl {
				w.corruptAt = cl - 1
			}
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *faultWriter) Write(b []byte) (int, error) {
	if w.reset {
		return 0, errInjectedReset
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.fault.Kind == FaultReset && int64(len(b)) > w.fault.Offset-w.n {
		k, _ := w.write(b[:w.fault.Offset-w.n])
		w.reset = true
		resetConn(w.ResponseWriter)
		return k, errInjectedReset
	}
	if w.corruptAt >= w.n && w.corruptAt < w.n+int64(len(b)) {
		b = append([]byte(nil), b...) // the caller's buffer is not ours to change
		b[w.corruptAt-w.n] ^= 0xff
	}
	return w.write(b)
}

// write passes b on, counting it first so the counts never lag behind
// what the client has read.
func (w *faultWriter) write(b []byte) (int, error) {
	w.p.addBytes(w, int64(len(b)))
	k, err := w.ResponseWriter.Write(b)
	if k < len(b) {
		w.p.addBytes(w, int64(k-len(b)))
	}
	w.n += int64(k)
	return k, err
}

// FlushError flushes what was written, unless the connection was reset
// (ReverseProxy flushes after every write, the failed one too).
func (w *faultWriter) FlushError() error {
	if w.reset {
		return errInjectedReset
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the server's writer (flush,
// hijack).
func (w *faultWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// resetConn sends what was written so far, then resets the connection.
func resetConn(w http.ResponseWriter) {
	_ = http.NewResponseController(w).Flush() // fails only when nothing can be flushed
	dropConn(w)
}

// dropConn takes the connection from the server without sending anything
// more and closes it with SO_LINGER 0, so the client gets a reset (RST),
// not an orderly end of stream.
func dropConn(w http.ResponseWriter) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // the server then drops the connection
	}
	_ = buf.Flush()
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn() // no close_notify: the peer sees the reset
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = raw.Close()
}

func contentLength(h http.Header) int64 {
	n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
	if err != nil {
		return -1
	}
	return n
}
