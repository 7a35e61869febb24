package builder

import (
	"bytes"
	"strings"
	"sync"
	"time"
)

// emitter numbers vertices and delivers events one at a time, in the
// order they happen, whatever goroutine reports them.
type emitter struct {
	mu   sync.Mutex
	fn   ProgressFunc
	next int
}

func newEmitter(fn ProgressFunc) *emitter { return &emitter{fn: fn} }

// send delivers ev, stamped with the time, under the lock.
func (e *emitter) send(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.deliver(ev)
}

func (e *emitter) deliver(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if e.fn != nil {
		e.fn(ev)
	}
}

// begin starts a vertex described by proto (Name, Stage, Step, Steps,
// Location, Key) and returns it with its number.
func (e *emitter) begin(proto Event) *vertex {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.next++
	v := &vertex{e: e, proto: proto, start: time.Now()}
	v.proto.Vertex = e.next
	ev := v.proto
	ev.Kind, ev.Time = EventStart, v.start
	e.deliver(ev)
	return v
}

// internal starts an "[internal] …" style vertex tied to no step.
func (e *emitter) internal(name string) *vertex { return e.begin(Event{Name: name}) }

func (e *emitter) warn(w Warning) {
	e.send(Event{Kind: EventWarning, Message: w.Message, Location: w.Location})
}

// vertex is one unit of work being reported.
type vertex struct {
	e     *emitter
	proto Event
	start time.Time
	once  sync.Once
}

func (v *vertex) number() int { return v.proto.Vertex }

func (v *vertex) elapsed() time.Duration { return time.Since(v.start) }

func (v *vertex) event(kind EventKind) Event {
	ev := v.proto
	ev.Kind = kind
	return ev
}

// status reports a progress line inside the vertex.
func (v *vertex) status(msg string) {
	ev := v.event(EventStatus)
	ev.Message = msg
	v.e.send(ev)
}

// log reports output of a RUN step; data is copied.
func (v *vertex) log(stream int, data []byte) {
	ev := v.event(EventLog)
	ev.Stream, ev.Data = stream, bytes.Clone(data)
	v.e.send(ev)
}

// end finishes the vertex once: cached, done, or failed with err.
func (v *vertex) end(kind EventKind, err error) {
	v.once.Do(func() {
		ev := v.event(kind)
		ev.Duration, ev.Err = v.elapsed(), err
		v.e.send(ev)
	})
}

func (v *vertex) cached()        { v.end(EventCached, nil) }
func (v *vertex) done()          { v.end(EventDone, nil) }
func (v *vertex) fail(err error) { v.end(EventError, err) }
func (v *vertex) finish(err error) {
	if err != nil {
		v.fail(err)
		return
	}
	v.done()
}

// runOutput is where a RUN step's stdout and stderr go: each write is a
// log event, and the last lines are kept for the error message.
type runOutput struct {
	v     *vertex
	mu    sync.Mutex
	lines []string  // complete lines, the last maxTail
	part  [3][]byte // an unfinished line per stream
}

// maxTail is how many output lines a failed RUN's error carries.
const maxTail = 20

func (o *runOutput) stream(n int) *streamWriter { return &streamWriter{o: o, n: n} }

func (o *runOutput) write(n int, p []byte) {
	o.v.log(n, p)
	o.mu.Lock()
	defer o.mu.Unlock()
	buf := append(o.part[n], p...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		o.addLine(string(buf[:i]))
		buf = buf[i+1:]
	}
	if len(buf) > 4096 { // a line without end: keep its tail only
		buf = buf[len(buf)-4096:]
	}
	o.part[n] = bytes.Clone(buf)
}

func (o *runOutput) addLine(s string) {
	o.lines = append(o.lines, strings.TrimRight(s, "\r"))
	if len(o.lines) > maxTail {
		o.lines = o.lines[len(o.lines)-maxTail:]
	}
}

// tail returns the last lines, unfinished ones included.
func (o *runOutput) tail() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := append([]string(nil), o.lines...)
	for _, p := range o.part {
		if len(p) > 0 {
			out = append(out, string(p))
		}
	}
	if len(out) > maxTail {
		out = out[len(out)-maxTail:]
	}
	return out
}

// streamWriter is one stream of a runOutput.
type streamWriter struct {
	o *runOutput
	n int
}

func (w *streamWriter) Write(p []byte) (int, error) {
	w.o.write(w.n, p)
	return len(p), nil
}
