package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"minibuild/builder"
)

// ttyLogLines is how many output lines a running vertex shows at most.
const ttyLogLines = 6

// ttyRenderer draws a live view at the bottom of a terminal:
//
//	[+] Building 3.2s (5/9)
//	 => [3/5] RUN make                                   2.1s
//	 => => # cc -c main.c
//	 => [builder 2/4] COPY a/ ./                         0.3s
//
// one block per running vertex, redrawn every tick: steps of concurrent
// stages and COPY --link steps are stacked, each with its own elapsed
// time and output. A vertex that ends leaves the live area and is printed
// once above it (" => CACHED [2/5] COPY . /app   0.0s", "ERROR", or
// "CANCELED" for a step stopped because another failed), so the
// terminal's scrollback keeps the whole build. The live area is erased
// with ANSI cursor movement and drawn in one write to avoid flicker.
type ttyRenderer struct {
	mu       sync.Mutex // the ticker draws too
	w        io.Writer
	size     func() (cols, rows int)
	now      func() time.Time
	start    time.Time
	vertices map[int]*ttyVertex
	running  []int // in start order
	seen     int   // vertices started
	ended    int   // vertices that ended
	live     int   // lines of the live area now on screen
	warnings []builder.Event
	stop     chan struct{}
	stopped  chan struct{}
}

type ttyVertex struct {
	n      int
	name   string
	start  time.Time
	out    lineBuffer
	status string
}

// newTTYRenderer draws to w; size reports the terminal's columns and
// rows. A tick of 0 redraws only on events (for tests).
func newTTYRenderer(w io.Writer, size func() (cols, rows int), now func() time.Time, tick time.Duration) *ttyRenderer {
	r := &ttyRenderer{w: w, size: size, now: now, start: now(), vertices: map[int]*ttyVertex{}}
	if tick > 0 {
		r.stop, r.stopped = make(chan struct{}), make(chan struct{})
		go r.tick(tick)
	}
	return r
}

func (r *ttyRenderer) tick(d time.Duration) {
	defer close(r.stopped)
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.mu.Lock()
			r.draw("")
			r.mu.Unlock()
		}
	}
}

func (r *ttyRenderer) event(ev builder.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ev.Kind == builder.EventWarning {
		r.warnings = append(r.warnings, ev)
		return
	}
	v := r.vertices[ev.Vertex]
	if v == nil {
		v = &ttyVertex{n: ev.Vertex, name: ev.Name, start: r.now()}
		r.vertices[ev.Vertex] = v
		r.running = append(r.running, ev.Vertex)
		r.seen++
	}
	var done string
	switch ev.Kind {
	case builder.EventLog:
		v.out.write(ev.Data, ttyLogLines)
	case builder.EventStatus:
		v.status = statusText(ev)
	case builder.EventCached:
		done = r.endLine(v, "CACHED ", ev.Duration)
	case builder.EventDone:
		done = r.endLine(v, "", ev.Duration)
	case builder.EventError:
		prefix := "ERROR "
		if canceled(ev) {
			prefix = "CANCELED "
		}
		done = r.endLine(v, prefix, ev.Duration)
	}
	r.draw(done)
}

// endLine removes v from the live area and returns its final line.
func (r *ttyRenderer) endLine(v *ttyVertex, prefix string, d time.Duration) string {
	for i, n := range r.running {
		if n == v.n {
			r.running = append(r.running[:i], r.running[i+1:]...)
			r.ended++
			break
		}
	}
	cols, _ := r.size()
	return r.row(" => "+prefix+v.name, seconds(d), cols) + "\n"
}

// draw erases the live area, prints above the lines of vertices that
// ended, and draws the live area again.
func (r *ttyRenderer) draw(above string) {
	var b strings.Builder
	if r.live > 0 {
		fmt.Fprintf(&b, "\x1b[%dF\x1b[J", r.live) // to the area's first line; erase below
	}
	b.WriteString(above)
	lines := r.liveLines()
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	r.live = len(lines)
	io.WriteString(r.w, b.String())
}

// liveLines is the header and a block per running vertex, fitted to the
// terminal: concurrent vertices are stacked in start order, each with its
// own elapsed time and last output lines. Every running vertex gets its
// line while the terminal has rows for them (the oldest are summed up in
// one line otherwise), and the output lines share what rows are left.
// No line reaches the last column (see row).
func (r *ttyRenderer) liveLines() []string {
	cols, rows := r.size()
	width := cols - 1
	now := r.now()
	out := []string{truncate(fmt.Sprintf("[+] Building %s (%d/%d)", seconds(now.Sub(r.start)), r.ended, r.seen), width)}
	running := r.running
	avail := rows - 2 // the header, and the line the cursor rests on
	if hidden := len(running) - avail; avail > 0 && hidden > 0 {
		hidden++ // the summary takes a row too
		running = running[min(hidden, len(running)):]
		out = append(out, truncate(fmt.Sprintf(" => … %d more running", hidden), width))
		avail--
	}
	perVertex := ttyLogLines
	if len(running) > 0 {
		perVertex = min(ttyLogLines, max(0, (avail-len(running))/len(running)))
	}
	for _, n := range running {
		v := r.vertices[n]
		out = append(out, r.row(" => "+v.name, seconds(now.Sub(v.start)), cols))
		lines := v.out.tail()
		if v.status != "" {
			lines = append(lines, "\x00"+v.status)
		}
		if len(lines) > perVertex {
			lines = lines[len(lines)-perVertex:]
		}
		for _, l := range lines {
			if s, ok := strings.CutPrefix(l, "\x00"); ok {
				out = append(out, truncate(" => => "+s, width))
			} else {
				out = append(out, truncate(" => => # "+l, width))
			}
		}
	}
	return out
}

// row is text on the left and a time on the right edge of the terminal.
func (r *ttyRenderer) row(text, right string, cols int) string {
	width := cols - 1 // never write the last column: some terminals wrap
	text = truncate(text, width-len(right)-1)
	pad := width - utf8.RuneCountInString(text) - len(right)
	return text + strings.Repeat(" ", max(1, pad)) + right
}

func (r *ttyRenderer) finish(_ *builder.Result, err error) {
	if r.stop != nil {
		close(r.stop)
		<-r.stopped
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	cols, _ := r.size()
	var above strings.Builder
	for _, n := range r.running {
		v := r.vertices[n]
		above.WriteString(r.row(" => CANCELED "+v.name, seconds(r.now().Sub(v.start)), cols) + "\n")
	}
	r.running = nil
	state := "FINISHED"
	if err != nil {
		state = "FAILED"
	}
	above.WriteString(fmt.Sprintf("[+] Building %s (%d/%d) %s\n", seconds(r.now().Sub(r.start)), r.ended, r.seen, state))
	if r.live > 0 {
		fmt.Fprintf(r.w, "\x1b[%dF\x1b[J", r.live)
		r.live = 0
	}
	io.WriteString(r.w, above.String())
	printWarnings(r.w, r.warnings)
}

// truncate cuts s to at most n characters of a terminal line, dropping
// what a log line may carry that would break the layout: control
// characters and ANSI escape sequences (a tab shows as a space).
func truncate(s string, n int) string {
	var b strings.Builder
	count := 0
	for i := 0; i < len(s) && count < n; {
		c, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case c == 0x1b && i < len(s) && s[i] == '[':
			// CSI: parameters and intermediates up to a final byte
			// in 0x40–0x7e.
			for i++; i < len(s) && (s[i] < 0x40 || s[i] > 0x7e); i++ {
			}
			i++
			continue
		case c == '\t':
			c = ' '
		case c < 0x20 || c == 0x7f:
			continue
		}
		b.WriteRune(c)
		count++
	}
	return b.String()
}
