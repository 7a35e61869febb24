package builder

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"minibuild/exec"
)

// TestRunFailure checks a RUN that exits 2: the error names the step, the
// line and the exit code and carries the output's last lines; nothing of
// the step is left in the store.
func TestRunFailure(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	e.busybox()
	dir := smallContext(t)
	e.mustBuild(dir, smallProject, Request{})
	before := e.storeState()
	mounts := mountCount(t)
	df := "FROM busybox\nCOPY conf/ /conf/\nRUN echo preparing > /prep\nRUN echo step one; echo oops >&2; exit 2\nRUN echo never\n"
	_, err := e.build(dir, df, Request{})
	de, ok := errors.AsType[*DockerfileError](err)
	if !ok {
		t.Fatalf("Build = %v, want a *DockerfileError", err)
	}
	if got, want := err.Error(), "step 4/5 ("+filepath.Join(dir, "Dockerfile")+":4) RUN echo step one; echo oops >&2; exit 2: exit code 2"; got != want {
		t.Errorf("error = %q\nwant    %q", got, want)
	}
	if de.ExitCode != 2 || de.Location.Start != 4 || de.Step != 4 || de.Steps != 5 {
		t.Errorf("error fields: exit %d line %d step %d/%d", de.ExitCode, de.Location.Start, de.Step, de.Steps)
	}
	if _, ok := errors.AsType[*exec.ExitError](err); !ok {
		t.Errorf("error does not unwrap to *exec.ExitError")
	}
	// stdout and stderr are two pipes: their relative order is not kept.
	if diff := cmp.Diff([]string{"oops", "step one"}, slices.Sorted(slices.Values(de.Output))); diff != "" {
		t.Errorf("output tail (-want +got):\n%s", diff)
	}
	after := e.storeState() // the steps before the failure keep what they made
	if n := len(after["records"]) - len(before["records"]); n != 2 {
		t.Errorf("%d new records, want 2 (the COPY and the first RUN, not the failed one)", n)
	}
	if n := len(after["blobs"]) - len(before["blobs"]); n != 2 {
		t.Errorf("%d new blobs, want 2 layers of the steps that succeeded", n)
	}
	if got := mountCount(t); got != mounts {
		t.Errorf("mounts: %d before, %d after", mounts, got)
	}
	// The same failure again: nothing at all changes.
	before = e.storeState()
	if _, err := e.build(dir, "", Request{}); err == nil {
		t.Fatal("second build succeeded")
	}
	if diff := cmp.Diff(before, e.storeState()); diff != "" {
		t.Errorf("a failed step changed the store (-before +after):\n%s", diff)
	}
	e.fsck()
	if got := listDir(t, filepath.Join(e.root, "tmp")); len(got) > 1 {
		t.Errorf("tmp/ = %q", got)
	}
}

func TestRunErrors(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	e.busybox()
	for _, tc := range []struct {
		name, dockerfile, want string
		line                   int
	}{
		{"scratch", "FROM scratch\nRUN true\n", "nothing to run: the stage starts FROM scratch", 2},
		{"no shell", "FROM scratch\nCOPY f /f\nRUN true\n", "the shell form of RUN runs /bin/sh -c, which the image does not have", 3},
		{"unknown user", "FROM busybox\nUSER nobody-here\nRUN true\n", "unknown user", 3},
		{"copy missing", "FROM busybox\nCOPY missing /x\n", "not in the build context", 2},
		{"mount", "FROM busybox\nRUN --mount=type=cache,target=/c true\n", "RUN --mount: not supported", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "f"), "x")
			before := e.storeState()
			_, err := e.build(dir, tc.dockerfile, Request{})
			de, ok := errors.AsType[*DockerfileError](err)
			if !ok || !strings.Contains(err.Error(), tc.want) || de.Location.Start != tc.line {
				t.Fatalf("Build = %v, want a Dockerfile error at line %d containing %q", err, tc.line, tc.want)
			}
			after := e.storeState()
			if diff := cmp.Diff(before["blobs"], after["blobs"]); tc.name != "no shell" && diff != "" {
				t.Errorf("blobs changed:\n%s", diff)
			}
		})
	}
}

// TestTwoFailingStages runs two stages that both fail, two at a time:
// one error, the first failure's, and nothing left running or mounted.
func TestTwoFailingStages(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	e.busybox()
	mounts := mountCount(t)
	df := "FROM busybox AS a\nRUN exit 3\n\nFROM busybox AS b\nRUN exit 4\n\nFROM busybox\nCOPY --from=a /etc/passwd /a\nCOPY --from=b /etc/passwd /b\n"
	_, err := e.build(t.TempDir(), df, Request{Jobs: 2})
	de, ok := errors.AsType[*DockerfileError](err)
	if !ok || (de.ExitCode != 3 && de.ExitCode != 4) {
		t.Fatalf("Build = %v, want one step failure", err)
	}
	if strings.Count(err.Error(), "exit code") != 1 {
		t.Errorf("error %q reports more than one failure", err)
	}
	if got := mountCount(t); got != mounts {
		t.Errorf("mounts: %d before, %d after", mounts, got)
	}
	var errorsSeen int
	for _, ev := range e.recorded() {
		if ev.Kind == EventError && !errors.Is(ev.Err, context.Canceled) {
			errorsSeen++
		}
	}
	if errorsSeen == 0 || errorsSeen > 2 {
		t.Errorf("%d error events, want the failure(s)", errorsSeen)
	}
	e.fsck()
}

// TestCancel cancels a build while a RUN runs: the build returns the
// context's error, and no mount, process or scratch directory is left.
func TestCancel(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	e.busybox()
	mounts := mountCount(t)
	before := e.storeState()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	req := Request{Context: dir, Dockerfile: writeDockerfile(t, dir, "FROM busybox\nRUN sleep 600\n"), Progress: func(ev Event) {
		if ev.Kind == EventStart && strings.Contains(ev.Name, "RUN sleep") {
			cancel()
		}
	}}
	_, err := e.b.Build(ctx, req)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Build = %v, want context.Canceled", err)
	}
	if got := mountCount(t); got != mounts {
		t.Errorf("mounts: %d before, %d after", mounts, got)
	}
	if diff := cmp.Diff(before, e.storeState()); diff != "" {
		t.Errorf("a cancelled build changed the store:\n%s", diff)
	}
	for _, p := range listDir(t, filepath.Join(e.root, "tmp")) {
		if left := listDir(t, filepath.Join(e.root, "tmp", p)); len(left) != 0 {
			t.Errorf("tmp/%s holds %q after the build", p, left)
		}
	}
}
