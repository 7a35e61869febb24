package builder

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestFirstFailureOnly builds two stages whose RUN steps fail at the same
// moment, several times over: every time exactly one step is the failure
// (one Error event that is not a cancellation, and the returned error is
// that one), and the other ends cancelled.
func TestFirstFailureOnly(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	e.busybox()
	df := "FROM busybox AS a\nRUN exit 3\n\nFROM busybox AS b\nRUN exit 4\n\nFROM busybox\nCOPY --from=a /etc/passwd /a\nCOPY --from=b /etc/passwd /b\n"
	dir := t.TempDir()
	for round := range 5 {
		_, err := e.build(dir, df, Request{Jobs: 2})
		de, ok := errors.AsType[*DockerfileError](err)
		if !ok {
			t.Fatalf("round %d: Build = %v, want a step failure", round, err)
		}
		var failures, cancelled []string
		for _, ev := range e.recorded() {
			switch {
			case ev.Kind != EventError:
			case errors.Is(ev.Err, context.Canceled):
				cancelled = append(cancelled, ev.Name)
			default:
				failures = append(failures, ev.Name)
				if ev.Err != err {
					t.Errorf("round %d: the failure event's error %v is not the returned one %v", round, ev.Err, err)
				}
			}
		}
		if len(failures) != 1 {
			t.Fatalf("round %d: failures %q, want exactly one", round, failures)
		}
		want := fmt.Sprintf("exit code %d", de.ExitCode)
		if !strings.HasSuffix(err.Error(), want) || !strings.Contains(failures[0], fmt.Sprintf("RUN exit %d", de.ExitCode)) {
			t.Errorf("round %d: error %q, failed vertex %q: not the same step", round, err, failures[0])
		}
		if len(cancelled) > 1 {
			t.Errorf("round %d: cancelled %q, want at most the other RUN", round, cancelled)
		}
	}
	e.fsck()
}

// TestOneJobShowsOneRunning builds two independent stages with one job
// slot: a step's vertex starts when it has the slot, so progress never
// shows two steps working at once.
func TestOneJobShowsOneRunning(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	e.busybox()
	df := "FROM busybox AS a\nRUN echo a > /a\n\nFROM busybox AS b\nRUN echo b > /b\n\nFROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n"
	e.mustBuild(t.TempDir(), df, Request{Jobs: 1})
	open := map[int]string{}
	for _, ev := range e.recorded() {
		if ev.Step <= 1 { // internal vertices and FROM need no slot
			continue
		}
		switch ev.Kind {
		case EventStart:
			for _, other := range open {
				t.Errorf("%q started while %q ran", ev.Name, other)
			}
			open[ev.Vertex] = ev.Name
		case EventDone, EventError, EventCached:
			delete(open, ev.Vertex)
		}
	}
}

// TestStepNamesKeepShellVariables checks the progress name of a RUN
// written in capitals: like BuildKit, variables the Dockerfile does not
// define are left for the shell ("$i"), defined ones are expanded.
func TestStepNamesKeepShellVariables(t *testing.T) {
	t.Parallel()
	p := mustParse(t, "FROM scratch\nARG V=1\nRUN for i in 1 2; do echo a$i ${x:-d} $V; done\nrun echo $i\n", Request{}, nil)
	var got []string
	for _, s := range p.Target.Steps {
		if s.Run != nil {
			got = append(got, s.Display)
		}
	}
	want := []string{"RUN for i in 1 2; do echo a$i ${x:-d} 1; done", "RUN echo $i"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RUN step names (-want +got):\n%s", diff)
	}
}
