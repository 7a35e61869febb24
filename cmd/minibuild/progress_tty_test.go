package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"minibuild/builder"
	"minibuild/exec"
)

// ttyRun feeds events to a tty view of cols×rows, the clock following
// the events' times, and calls frame after each event with the live area
// it left on screen.
func ttyRun(t *testing.T, cols, rows int, events []builder.Event, frame func(i int, live string)) string {
	t.Helper()
	var b strings.Builder
	now := at(0)
	r := newTTYRenderer(&b, func() (int, int) { return cols, rows }, func() time.Time { return now }, 0)
	p := &progress{r: r, logs: map[int]*lineBuffer{}, names: map[int]string{}}
	for i, ev := range events {
		now = ev.Time
		p.event(ev)
		if frame != nil {
			frame(i, lastFrame(b.String()))
		}
	}
	now = now.Add(100 * time.Millisecond)
	p.finish(nil, errors.New("failed"))
	out := b.String()
	for _, line := range strings.Split(out, "\n") {
		if i := strings.LastIndex(line, "\x1b[J"); i >= 0 {
			line = line[i+3:]
		}
		if n := len([]rune(line)); n >= cols {
			t.Errorf("line of %d characters on a %d-column terminal: %q", n, cols, line)
		}
	}
	return out
}

// concurrentFailure is two stages' RUN steps running at once, then one
// failing and the other stopped because of it.
func concurrentFailure() []builder.Event {
	return []builder.Event{
		{Kind: builder.EventStart, Vertex: 1, Name: "[a 2/2] RUN ./build.sh", Time: at(0)},
		{Kind: builder.EventStart, Vertex: 2, Name: "[b 2/2] RUN ./test.sh", Time: at(500)},
		{Kind: builder.EventLog, Vertex: 1, Stream: 1, Data: []byte("compiling a\n"), Time: at(1000)},
		{Kind: builder.EventLog, Vertex: 2, Stream: 1, Data: []byte("testing b\n"), Time: at(1200)},
		{Kind: builder.EventError, Vertex: 2, Time: at(2000), Duration: 1500 * time.Millisecond, Err: &exec.ExitError{Code: 4}},
		{Kind: builder.EventError, Vertex: 1, Time: at(2100), Duration: 2100 * time.Millisecond, Err: fmt.Errorf("run: %w", context.Canceled)},
	}
}

// TestTTYConcurrentSteps checks the live view of two steps running at
// once: one block each, in start order, with its own elapsed time and its
// own output lines under it.
func TestTTYConcurrentSteps(t *testing.T) {
	t.Parallel()
	sawBoth := false
	ttyRun(t, 60, 20, concurrentFailure(), func(i int, live string) {
		if i != 3 { // both started, both printed a line
			return
		}
		sawBoth = true
		// 59 columns: the name on the left, the time on the right.
		want := "[+] Building 1.2s (0/2)\n" +
			fmt.Sprintf("%-55s1.2s\n", " => [a 2/2] RUN ./build.sh") +
			" => => # compiling a\n" +
			fmt.Sprintf("%-55s0.7s\n", " => [b 2/2] RUN ./test.sh") +
			" => => # testing b\n"
		if live != want {
			t.Errorf("live area:\n%s\nwant:\n%s", live, want)
		}
	})
	if !sawBoth {
		t.Fatal("no frame checked")
	}
}

// TestTTYCanceled checks that a step stopped because another failed is
// shown as CANCELED, and only the failure as ERROR.
func TestTTYCanceled(t *testing.T) {
	t.Parallel()
	out := ttyRun(t, 60, 20, concurrentFailure(), nil)
	for _, want := range []string{
		fmt.Sprintf("%-55s1.5s\n", " => ERROR [b 2/2] RUN ./test.sh"),
		fmt.Sprintf("%-55s2.1s\n", " => CANCELED [a 2/2] RUN ./build.sh"),
		"(2/2) FAILED\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("tty output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "ERROR"); n != 1 {
		t.Errorf("%d ERROR lines, want 1:\n%s", n, out)
	}
}

// TestTTYManyRunning checks a terminal too short for every running step:
// the newest keep their lines, the oldest are counted in one line, and
// the live area never outgrows the terminal.
func TestTTYManyRunning(t *testing.T) {
	t.Parallel()
	var events []builder.Event
	for n := 1; n <= 8; n++ {
		events = append(events,
			builder.Event{Kind: builder.EventStart, Vertex: n, Name: fmt.Sprintf("[%d/8] COPY --link d%d/ /d%d/", n, n, n), Time: at(10 * n)},
			builder.Event{Kind: builder.EventLog, Vertex: n, Stream: 1, Data: []byte("line\n"), Time: at(10*n + 1)})
	}
	const rows = 6
	var last string
	ttyRun(t, 50, rows, events, func(i int, live string) {
		if n := strings.Count(live, "\n"); n > rows-1 {
			t.Errorf("event %d: live area of %d lines on a %d-row terminal:\n%s", i, n, rows, live)
		}
		last = live
	})
	for _, want := range []string{" => … 5 more running\n", "COPY --link d6/", "COPY --link d7/", "COPY --link d8/"} {
		if !strings.Contains(last, want) {
			t.Errorf("live area lacks %q:\n%s", want, last)
		}
	}
	if strings.Contains(last, "d5/") {
		t.Errorf("live area shows a step counted as hidden:\n%s", last)
	}
}

// TestTTYLongLines checks that output lines are cut before the last
// column, like vertex lines (some terminals wrap when it is written,
// which would break the redraw's line count).
func TestTTYLongLines(t *testing.T) {
	t.Parallel()
	events := []builder.Event{
		{Kind: builder.EventStart, Vertex: 1, Name: "[1/2] RUN " + strings.Repeat("x", 80), Time: at(0)},
		{Kind: builder.EventLog, Vertex: 1, Stream: 1, Data: []byte(strings.Repeat("y", 80) + "\n"), Time: at(10)},
		{Kind: builder.EventStatus, Vertex: 1, Message: "writing layer " + strings.Repeat("z", 80), Time: at(20)},
		{Kind: builder.EventDone, Vertex: 1, Time: at(30), Duration: 30 * time.Millisecond},
	}
	ttyRun(t, 40, 10, events, nil) // ttyRun checks every line's width
}

// TestPlainCanceled checks the plain view of the same failure: the steps'
// lines interleave under their numbers, the failure is the one ERROR and
// the other step is CANCELED; the error message repeats the failed step's
// output, not the cancelled one's.
func TestPlainCanceled(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	p := newProgress(progressPlain, &b)
	for _, ev := range concurrentFailure() {
		p.event(ev)
	}
	p.finish(nil, errors.New("failed"))
	want := `#1 [a 2/2] RUN ./build.sh
#1 ...

#2 [b 2/2] RUN ./test.sh
#2 ...

#1 [a 2/2] RUN ./build.sh
#1 1.000 compiling a
#1 ...

#2 [b 2/2] RUN ./test.sh
#2 0.700 testing b
#2 ERROR: exit code 4

#1 [a 2/2] RUN ./build.sh
#1 CANCELED
`
	if got := b.String(); got != want {
		t.Errorf("plain output:\n%s\nwant:\n%s", got, want)
	}
	if name, lines := p.failedOutput(); name != "[b 2/2] RUN ./test.sh" || len(lines) != 1 || lines[0] != "testing b" {
		t.Errorf("failedOutput() = %q, %q; want the failed step's", name, lines)
	}
}
