package testenv

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
)

// maxProcLog bounds the output a server keeps for the failure report; the
// end of the output, where a failure shows, is what is kept.
const maxProcLog = 1 << 20

// procLog collects a server's output for the test log (shown only when the
// test fails) and watches it line by line for readiness and bind failures.
// It is safe for concurrent use: os/exec copies stdout and stderr from two
// goroutines.
type procLog struct {
	mu      sync.Mutex
	tail    []byte // the last maxProcLog bytes of complete lines
	dropped int64  // bytes cut from the front of tail
	partial []byte // an unterminated last line
	w       *lineWatch
}

// lineWatch reports what one process start printed.
type lineWatch struct {
	ready     chan struct{} // closed at the first line containing readyText
	readyText string
	addrInUse bool // a line said the address was in use
}

// watch replaces the current watch with a new one looking for readyText.
func (l *procLog) watch(readyText string) *lineWatch {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w = &lineWatch{ready: make(chan struct{}), readyText: readyText}
	return l.w
}

// sawAddrInUse reports whether the process of w said its address was in
// use. It is reliable once that process has been waited for.
func (l *procLog) sawAddrInUse(w *lineWatch) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return w.addrInUse
}

func (l *procLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.line(l.partial[:i+1])
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

func (l *procLog) line(b []byte) {
	if l.quiet(b) {
		return
	}
	l.tail = append(l.tail, b...)
	if over := len(l.tail) - maxProcLog; over > 0 {
		l.dropped += int64(over)
		l.tail = append(l.tail[:0], l.tail[over:]...)
	}
	if l.w == nil {
		return
	}
	s := string(b)
	if strings.Contains(s, "address already in use") {
		l.w.addrInUse = true
	}
	if l.w.readyText != "" && strings.Contains(s, l.w.readyText) {
		close(l.w.ready)
		l.w.readyText = ""
	}
}

// quiet reports whether a line is distribution's per-request info,
// which repeats its access log line for line.
func (l *procLog) quiet(b []byte) bool {
	return bytes.Contains(b, []byte(`level=info msg="authorized request"`)) ||
		bytes.Contains(b, []byte(`level=info msg="response completed"`))
}

// String returns the kept output, noting how much was cut.
func (l *procLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	if l.dropped > 0 {
		fmt.Fprintf(&b, "[%d bytes of earlier output cut]\n", l.dropped)
	}
	b.Write(l.tail)
	b.Write(l.partial)
	return b.String()
}
