package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"minibuild/builder"
)

// plainRenderer prints BuildKit's plain progress lines:
//
//	#3 [2/5] COPY . /app
//	#3 0.123 an output line (seconds since the vertex started)
//	#3 DONE 0.4s
//
// with a blank line before each vertex's block. When another vertex's
// event interrupts a vertex that is still running, "#N ..." closes its
// block and its header is printed again when it continues.
type plainRenderer struct {
	w        io.Writer
	vertices map[int]*plainVertex
	current  int // vertex whose block is open, 0 for none
	printed  bool
	warnings []builder.Event
}

type plainVertex struct {
	name       string
	start      time.Time
	out        lineBuffer
	lastStatus string
	done       bool
}

func newPlainRenderer(w io.Writer) *plainRenderer {
	return &plainRenderer{w: w, vertices: map[int]*plainVertex{}}
}

func (r *plainRenderer) event(ev builder.Event) {
	if ev.Kind == builder.EventWarning {
		r.warnings = append(r.warnings, ev)
		return
	}
	v := r.vertices[ev.Vertex]
	if v == nil {
		v = &plainVertex{name: ev.Name, start: ev.Time}
		r.vertices[ev.Vertex] = v
	}
	r.open(ev.Vertex, v)
	switch ev.Kind {
	case builder.EventLog:
		for _, line := range v.out.write(ev.Data, 0) {
			r.logLine(ev, v, line)
		}
	case builder.EventStatus:
		// One line when a status begins and one when it completes: byte
		// counts in between would flood a log.
		key := ev.Message
		if ev.Total > 0 && ev.Current >= ev.Total {
			key += "\x00done"
		}
		if key != v.lastStatus {
			v.lastStatus = key
			fmt.Fprintf(r.w, "#%d %s\n", ev.Vertex, statusText(ev))
		}
	case builder.EventCached:
		r.flushLog(ev, v)
		fmt.Fprintf(r.w, "#%d CACHED\n", ev.Vertex)
		r.close(v)
	case builder.EventDone:
		r.flushLog(ev, v)
		fmt.Fprintf(r.w, "#%d DONE %s\n", ev.Vertex, seconds(ev.Duration))
		r.close(v)
	case builder.EventError:
		r.flushLog(ev, v)
		if canceled(ev) {
			fmt.Fprintf(r.w, "#%d CANCELED\n", ev.Vertex)
		} else {
			fmt.Fprintf(r.w, "#%d ERROR: %s\n", ev.Vertex, firstLine(errText(ev.Err)))
		}
		r.close(v)
	}
}

// open makes vertex n's block the current one, printing its header.
func (r *plainRenderer) open(n int, v *plainVertex) {
	if r.current == n {
		return
	}
	if cur := r.vertices[r.current]; cur != nil && !cur.done {
		fmt.Fprintf(r.w, "#%d ...\n", r.current)
	}
	if r.printed {
		fmt.Fprintln(r.w)
	}
	fmt.Fprintf(r.w, "#%d %s\n", n, v.name)
	r.current, r.printed = n, true
}

func (r *plainRenderer) close(v *plainVertex) {
	v.done = true
}

func (r *plainRenderer) logLine(ev builder.Event, v *plainVertex, line string) {
	fmt.Fprintf(r.w, "#%d %.3f %s\n", ev.Vertex, ev.Time.Sub(v.start).Seconds(), line)
}

// flushLog prints an unfinished last output line before the vertex ends.
func (r *plainRenderer) flushLog(ev builder.Event, v *plainVertex) {
	for _, line := range v.out.flush(0) {
		r.logLine(ev, v, line)
	}
}

func (r *plainRenderer) finish(*builder.Result, error) {
	printWarnings(r.w, r.warnings)
}

// printWarnings lists the build's warnings after its progress.
func printWarnings(w io.Writer, warnings []builder.Event) {
	if len(warnings) == 0 {
		return
	}
	s := "s"
	if len(warnings) == 1 {
		s = ""
	}
	fmt.Fprintf(w, "\n%d warning%s:\n", len(warnings), s)
	for _, ev := range warnings {
		if ev.Location.Start > 0 {
			fmt.Fprintf(w, " - line %s: %s\n", ev.Location, ev.Message)
		} else {
			fmt.Fprintf(w, " - %s\n", ev.Message)
		}
	}
}

// statusText is a Status event's message with its byte counts.
func statusText(ev builder.Event) string {
	switch {
	case ev.Total > 0 && ev.Current >= ev.Total:
		return fmt.Sprintf("%s %s done", ev.Message, humanSize(ev.Total))
	case ev.Total > 0:
		return fmt.Sprintf("%s %s / %s", ev.Message, humanSize(ev.Current), humanSize(ev.Total))
	case ev.Current > 0:
		return fmt.Sprintf("%s %s", ev.Message, humanSize(ev.Current))
	}
	return ev.Message
}

func errText(err error) string {
	if err == nil {
		return "failed"
	}
	return err.Error()
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
