package exec_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"minibuild/exec"
)

// output is a goroutine-safe buffer that can tell when a word appears.
type output struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	word  string
	once  sync.Once
	found chan struct{}
}

func newOutput(word string) *output { return &output{word: word, found: make(chan struct{})} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	if o.word != "" && strings.Contains(o.buf.String(), o.word) {
		o.once.Do(func() { close(o.found) })
	}
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// sh runs script with /bin/sh -c in s (Args set here) and returns its
// combined output.
func sh(t *testing.T, s exec.Spec, script string) (string, error) {
	t.Helper()
	out := newOutput("")
	s.Args = []string{"/bin/sh", "-c", script}
	s.Stdout, s.Stderr = out, out
	err := exec.Run(context.Background(), s)
	return out.String(), err
}

// mustSh is sh that fails t on any error.
func mustSh(t *testing.T, s exec.Spec, script string) string {
	t.Helper()
	out, err := sh(t, s, script)
	if err != nil {
		t.Fatalf("Run(%q) = %v, want nil; output:\n%s", script, err, out)
	}
	return out
}

// runUntil runs script and cancels it once its output contains word.
func runUntil(t *testing.T, s exec.Spec, script, word string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := newOutput(word)
	s.Args = []string{"/bin/sh", "-c", script}
	s.Stdout, s.Stderr = out, out
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-out.found:
			cancel()
		case <-done:
		}
	}()
	err := exec.Run(ctx, s)
	return out.String(), err
}

// processes returns the command lines of the host's processes that
// contain marker.
func processes(t *testing.T, marker string) []string {
	t.Helper()
	var found []string
	for _, pid := range pids(t) {
		b, err := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
		if err != nil {
			continue // gone meanwhile
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmd, marker) {
			found = append(found, pid+": "+cmd)
		}
	}
	return found
}

// children returns the pids whose parent is this test process.
func children(t *testing.T) []string {
	t.Helper()
	self := strconv.Itoa(os.Getpid())
	var found []string
	for _, pid := range pids(t) {
		if ppid(t, pid) == self {
			found = append(found, pid)
		}
	}
	return found
}

// ppid returns the parent of pid, or "" if it is gone.
func ppid(t *testing.T, pid string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return ""
	}
	// pid (comm) state ppid …; comm may hold spaces and parentheses.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 2 {
		return ""
	}
	return f[1]
}

func pids(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, e.Name())
		}
	}
	return out
}

// mountsMentioning returns the lines of the process's mountinfo that
// contain s.
func mountsMentioning(t *testing.T, file, s string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

// statusField returns the value of a /proc/PID/status line in out.
func statusField(out, key string) string {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return ""
}
