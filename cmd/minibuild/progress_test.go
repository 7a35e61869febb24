package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"minibuild/builder"
	"minibuild/exec"
)

var t0 = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// sampleEvents is a small build: an internal vertex, a cached step, and
// two RUN steps of concurrent stages whose output interleaves, one of
// which fails.
func sampleEvents() []builder.Event {
	key := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	return []builder.Event{
		{Kind: builder.EventStart, Vertex: 1, Name: "[internal] load build definition from Dockerfile", Time: at(0)},
		{Kind: builder.EventDone, Vertex: 1, Time: at(10), Duration: 10 * time.Millisecond},
		{Kind: builder.EventWarning, Message: "JSON arguments recommended for CMD", Location: builder.Location{Start: 7, End: 7}, Time: at(11)},
		{Kind: builder.EventStart, Vertex: 2, Name: "[a 1/2] FROM busybox", Stage: "a", Step: 1, Steps: 2, Location: builder.Location{Start: 1, End: 1}, Time: at(20)},
		{Kind: builder.EventCached, Vertex: 2, Time: at(21), Duration: time.Millisecond},
		{Kind: builder.EventStart, Vertex: 3, Name: "[a 2/2] RUN make", Stage: "a", Step: 2, Steps: 2, Key: key, Location: builder.Location{Start: 2, End: 2}, Time: at(100)},
		{Kind: builder.EventStart, Vertex: 4, Name: "[b 2/2] RUN test", Stage: "b", Step: 2, Steps: 2, Location: builder.Location{Start: 5, End: 5}, Time: at(110)},
		{Kind: builder.EventLog, Vertex: 3, Stream: 1, Data: []byte("cc -c main.c\ncc -o "), Time: at(223)},
		{Kind: builder.EventLog, Vertex: 4, Stream: 2, Data: []byte("testing\n"), Time: at(300)},
		{Kind: builder.EventLog, Vertex: 3, Stream: 1, Data: []byte("app main.o\n"), Time: at(400)},
		{Kind: builder.EventStatus, Vertex: 3, Message: "writing layer", Current: 10, Total: 2000, Time: at(410)},
		{Kind: builder.EventStatus, Vertex: 3, Message: "writing layer", Current: 1000, Total: 2000, Time: at(420)},
		{Kind: builder.EventStatus, Vertex: 3, Message: "writing layer", Current: 2000, Total: 2000, Time: at(430)},
		{Kind: builder.EventDone, Vertex: 3, Time: at(500), Duration: 400 * time.Millisecond},
		{Kind: builder.EventLog, Vertex: 4, Stream: 2, Data: []byte("FAIL: no"), Time: at(600)},
		{Kind: builder.EventError, Vertex: 4, Time: at(700), Duration: 590 * time.Millisecond, Err: &exec.ExitError{Code: 2}},
	}
}

func TestPlainProgress(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	p := newProgress(progressPlain, &b)
	for _, ev := range sampleEvents() {
		p.event(ev)
	}
	p.finish(nil, errors.New("failed"))
	want := `#1 [internal] load build definition from Dockerfile
#1 DONE 0.0s

#2 [a 1/2] FROM busybox
#2 CACHED

#3 [a 2/2] RUN make
#3 ...

#4 [b 2/2] RUN test
#4 ...

#3 [a 2/2] RUN make
#3 0.123 cc -c main.c
#3 ...

#4 [b 2/2] RUN test
#4 0.190 testing
#4 ...

#3 [a 2/2] RUN make
#3 0.300 cc -o app main.o
#3 writing layer 10B / 2kB
#3 writing layer 2kB done
#3 DONE 0.4s

#4 [b 2/2] RUN test
#4 0.590 FAIL: no
#4 ERROR: exit code 2

1 warning:
 - line 7: JSON arguments recommended for CMD
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("plain progress (-want +got):\n%s", diff)
	}
	name, lines := p.failedOutput()
	if name != "[b 2/2] RUN test" || !cmp.Equal(lines, []string{"testing", "FAIL: no"}) {
		t.Errorf("failedOutput() = %q, %q; want the RUN test vertex and its two lines", name, lines)
	}
}

func TestRawJSONProgress(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	p := newProgress(progressRawJSON, &b)
	for _, ev := range sampleEvents() {
		p.event(ev)
	}
	res := &builder.Result{
		Manifest: v1.Descriptor{Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("1", 64)}},
		Config:   v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("2", 64)},
		Tags:     []string{"docker.io/library/x:latest"},
	}
	p.finish(res, nil)
	var kinds []string
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	var objs []map[string]any
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(m["time"])); err != nil {
			t.Errorf("line %q: time: %v", sc.Text(), err)
		}
		kinds = append(kinds, fmt.Sprint(m["kind"]))
		objs = append(objs, m)
	}
	want := []string{"start", "done", "warning", "start", "cached", "start", "start", "log", "log", "log", "status", "status", "status", "done", "log", "error", "result"}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Fatalf("rawjson kinds (-want +got):\n%s", diff)
	}
	checks := []struct {
		i     int
		field string
		want  any
	}{
		{5, "name", "[a 2/2] RUN make"},
		{5, "stage", "a"},
		{5, "step", 2.0},
		{5, "steps", 2.0},
		{5, "line", 2.0},
		{5, "key", "sha256:" + strings.Repeat("ab", 32)},
		{7, "data", "cc -c main.c\ncc -o "},
		{7, "stream", 1.0},
		{2, "line", 7.0},
		{2, "message", "JSON arguments recommended for CMD"},
		{13, "duration_ms", 400.0},
		{15, "error", "exit code 2"},
		{16, "digest", "sha256:" + strings.Repeat("1", 64)},
		{16, "config", "sha256:" + strings.Repeat("2", 64)},
	}
	for _, c := range checks {
		if got := objs[c.i][c.field]; got != c.want {
			t.Errorf("event %d (%s) field %s = %v, want %v", c.i, kinds[c.i], c.field, got, c.want)
		}
	}
}

func TestTTYProgress(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	now := at(0)
	r := newTTYRenderer(&b, func() (int, int) { return 60, 20 }, func() time.Time { return now }, 0)
	p := &progress{r: r, logs: map[int]*lineBuffer{}, names: map[int]string{}}
	for _, ev := range sampleEvents() {
		now = ev.Time
		p.event(ev)
		if ev.Vertex == 4 && ev.Kind == builder.EventLog && string(ev.Data) == "testing\n" {
			// Both RUN steps are live, each with its output.
			frame := lastFrame(b.String())
			for _, want := range []string{"[+] Building 0.3s (2/4)", " => [a 2/2] RUN make", " => => # cc -c main.c", " => => # cc -o", " => [b 2/2] RUN test", " => => # testing"} {
				if !strings.Contains(frame, want) {
					t.Errorf("live frame lacks %q:\n%s", want, frame)
				}
			}
		}
	}
	now = at(1000)
	p.finish(nil, errors.New("x"))
	out := b.String()
	for _, want := range []string{
		" => CACHED [a 1/2] FROM busybox",
		" => [a 2/2] RUN make" + strings.Repeat(" ", 35) + "0.4s\n",
		" => ERROR [b 2/2] RUN test",
		"[+] Building 1.0s (4/4) FAILED\n",
		"1 warning:\n - line 7: JSON arguments recommended for CMD\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("tty output lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if i := strings.LastIndex(line, "\x1b[J"); i >= 0 {
			line = line[i+3:]
		}
		if len([]rune(line)) >= 60 {
			t.Errorf("line wider than the terminal: %q", line)
		}
	}
}

// lastFrame is what follows the last erase of the live area.
func lastFrame(s string) string {
	if i := strings.LastIndex(s, "\x1b[J"); i >= 0 {
		return s[i+3:]
	}
	return s
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 3, "hel"},
		{"a\tb", 5, "a b"},
		{"\x1b[31mred\x1b[0m!", 10, "red!"},
		{"héllo wörld", 7, "héllo w"},
		{"bell\x07", 10, "bell"},
		{"x", 0, ""},
	}
	for _, tc := range tests {
		if got := truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestLineBuffer(t *testing.T) {
	t.Parallel()
	var lb lineBuffer
	lb.write([]byte("a\nb"), 2)
	lb.write([]byte("c\nd\ne\r\n"), 2)
	lb.write([]byte("50%\r100%"), 2)
	if got, want := lb.tail(), []string{"d", "e", "100%"}; !cmp.Equal(got, want) {
		t.Errorf("tail() = %q, want %q", got, want)
	}
}

func TestPrintBuildError(t *testing.T) {
	t.Parallel()
	de := &builder.DockerfileError{
		File: "/tmp/x/Dockerfile", Location: builder.Location{Start: 9, End: 10},
		Err: fmt.Errorf("step 3/4 RUN make: %w", &exec.ExitError{Code: 2}),
		Excerpt: []builder.SourceLine{
			{Number: 8, Text: "COPY . ."},
			{Number: 9, Text: "RUN make \\", Highlight: true},
			{Number: 10, Text: "    all", Highlight: true},
			{Number: 11, Text: ""},
		},
	}
	var b strings.Builder
	p := newProgress(progressQuiet, &b)
	for _, ev := range sampleEvents() {
		p.event(ev)
	}
	var out strings.Builder
	printBuildError(&out, fmt.Errorf("build: %w", de), "Dockerfile", p)
	want := `Dockerfile:9-10: step 3/4 RUN make: exit code 2
   8 |     COPY . .
   9 | >>> RUN make \
  10 | >>>     all
  11 |
last output of [b 2/2] RUN test (exit code 2):
  > testing
  > FAIL: no
`
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("printBuildError (-want +got):\n%s", diff)
	}
	if b.Len() != 0 {
		t.Errorf("quiet progress printed %q", b.String())
	}

	out.Reset()
	printBuildError(&out, errors.New("open store: permission denied"), "", nil)
	if got := out.String(); got != "minibuild: open store: permission denied\n" {
		t.Errorf("printBuildError(plain error) = %q", got)
	}
}

// TestTTYProgressTicker runs the live view with its redraw ticker while
// events arrive, for the race detector.
func TestTTYProgressTicker(t *testing.T) {
	t.Parallel()
	var b syncBuilder
	r := newTTYRenderer(&b, func() (int, int) { return 80, 24 }, time.Now, time.Millisecond)
	p := &progress{r: r, logs: map[int]*lineBuffer{}, names: map[int]string{}}
	for _, ev := range sampleEvents() {
		p.event(ev)
	}
	p.finish(nil, nil)
	p.event(builder.Event{Kind: builder.EventStart, Vertex: 9, Name: "late"}) // dropped
	if out := b.String(); !strings.Contains(out, "FINISHED") || strings.Contains(out, "late") {
		t.Errorf("tty output:\n%s", out)
	}
}

// syncBuilder is a strings.Builder safe for concurrent writes.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
