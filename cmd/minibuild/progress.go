package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"minibuild/builder"
)

// progressMode is a --progress value.
type progressMode string

// Progress modes.
const (
	progressAuto    progressMode = "auto"
	progressPlain   progressMode = "plain"
	progressTTY     progressMode = "tty"
	progressQuiet   progressMode = "quiet"
	progressRawJSON progressMode = "rawjson"
)

func parseProgressMode(s string) (progressMode, error) {
	switch m := progressMode(s); m {
	case progressAuto, progressPlain, progressTTY, progressQuiet, progressRawJSON:
		return m, nil
	}
	return "", &usageError{fmt.Errorf("--progress %q: want auto, plain, tty, quiet or rawjson", s)}
}

// renderer draws build events in one --progress mode. Calls are
// serialized by [progress].
type renderer interface {
	event(ev builder.Event)
	// finish ends the display: res is the build's result, or err why it
	// failed.
	finish(res *builder.Result, err error)
}

// tailLines is how many output lines of a vertex an error repeats.
const tailLines = 10

// progress is the build's [builder.ProgressFunc]: it hands each event to
// the renderer of the chosen mode and keeps the last output lines of
// every vertex, so a failed RUN's error can repeat them.
type progress struct {
	mu       sync.Mutex
	r        renderer
	logs     map[int]*lineBuffer
	names    map[int]string
	failed   int // vertex of the last failure (Error event not a cancellation), 0 for none
	finished bool
}

// newProgress renders to w in mode; auto picks tty when w is a terminal.
func newProgress(mode progressMode, w io.Writer) *progress {
	if mode == progressAuto {
		mode = progressPlain
		if cols, _ := termSize(w); cols > 0 {
			mode = progressTTY
		}
	}
	var r renderer
	switch mode {
	case progressTTY:
		r = newTTYRenderer(w, func() (int, int) { return termSize(w) }, time.Now, 100*time.Millisecond)
	case progressQuiet:
		r = quietRenderer{}
	case progressRawJSON:
		r = newJSONRenderer(w)
	default:
		r = newPlainRenderer(w)
	}
	return &progress{r: r, logs: map[int]*lineBuffer{}, names: map[int]string{}}
}

// event is the [builder.ProgressFunc].
func (p *progress) event(ev builder.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	switch ev.Kind {
	case builder.EventStart:
		p.names[ev.Vertex] = ev.Name
	case builder.EventLog:
		lb := p.logs[ev.Vertex]
		if lb == nil {
			lb = &lineBuffer{}
			p.logs[ev.Vertex] = lb
		}
		lb.write(ev.Data, tailLines)
	case builder.EventError:
		if !canceled(ev) {
			p.failed = ev.Vertex
		}
	}
	p.r.event(ev)
}

// canceled reports whether an Error event ends a vertex that was stopped
// because the build was cancelled (another step failed first, or
// Ctrl-C), rather than one that failed: renderers show it as CANCELED,
// like BuildKit.
func canceled(ev builder.Event) bool {
	return ev.Kind == builder.EventError && errors.Is(ev.Err, context.Canceled)
}

// finish ends the display; later events are dropped.
func (p *progress) finish(res *builder.Result, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.finished = true
	p.r.finish(res, err)
}

// failedOutput is the name and last output lines of the vertex that
// failed, if it printed anything.
func (p *progress) failedOutput() (name string, lines []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	lb := p.logs[p.failed]
	if p.failed == 0 || lb == nil {
		return "", nil
	}
	return p.names[p.failed], lb.tail()
}

// lineBuffer splits a vertex's output into lines and keeps the last ones.
type lineBuffer struct {
	lines   []string
	partial []byte
}

// write adds data and returns the lines it completed; it keeps at most
// keep complete lines.
func (lb *lineBuffer) write(data []byte, keep int) []string {
	var done []string
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			lb.partial = append(lb.partial, data...)
			break
		}
		line := string(append(lb.partial, data[:i]...))
		lb.partial = lb.partial[:0]
		data = data[i+1:]
		done = append(done, trimCR(line))
	}
	lb.lines = append(lb.lines, done...)
	if len(lb.lines) > keep {
		lb.lines = append(lb.lines[:0], lb.lines[len(lb.lines)-keep:]...)
	}
	return done
}

// flush returns the unfinished last line, if any, as a complete one.
func (lb *lineBuffer) flush(keep int) []string {
	if len(lb.partial) == 0 {
		return nil
	}
	return lb.write([]byte("\n"), keep)
}

// tail is the kept lines and the unfinished one.
func (lb *lineBuffer) tail() []string {
	out := append([]string{}, lb.lines...)
	if len(lb.partial) > 0 {
		out = append(out, trimCR(string(lb.partial)))
	}
	return out
}

// trimCR keeps what a terminal would show of a line redrawn with "\r"
// (progress bars): the text after the last carriage return.
func trimCR(s string) string {
	for len(s) > 0 && s[len(s)-1] == '\r' {
		s = s[:len(s)-1]
	}
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\r' {
			return s[i+1:]
		}
	}
	return s
}

// termSize is the size of the terminal w writes to, or 0, 0 when w is not
// a terminal (or TERM is dumb). A terminal that does not say its size is
// taken as 80×24.
func termSize(w io.Writer) (cols, rows int) {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return 0, 0
	}
	fd := int(f.Fd())
	if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
		return 0, 0
	}
	ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 || ws.Row == 0 {
		return 80, 24
	}
	return int(ws.Col), int(ws.Row)
}

// millis is d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// seconds formats d like BuildKit: "0.4s", "12.3s".
func seconds(d time.Duration) string {
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// quietRenderer shows nothing; errors are printed by the command.
type quietRenderer struct{}

func (quietRenderer) event(builder.Event)           {}
func (quietRenderer) finish(*builder.Result, error) {}
