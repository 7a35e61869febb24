package builder

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"minibuild/oci"
)

// rendezvous is an HTTP server on 127.0.0.1 whose every answer waits
// until ready says so (or a timeout passes, which the test then reports):
// RUN steps that fetch from it prove they ran at the same time as what
// ready waits for, without measuring time.
type rendezvous struct {
	url      string
	mu       sync.Mutex
	timeout  bool
	released bool // answer at once from now on
}

// release makes every later request answered at once.
func (r *rendezvous) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.released = true
}

func (r *rendezvous) isReleased() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.released
}

func newRendezvous(t *testing.T, ready func() bool) *rendezvous {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &rendezvous{url: "http://" + ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		deadline := time.Now().Add(30 * time.Second)
		for !r.isReleased() && !ready() {
			if time.Now().After(deadline) {
				r.mu.Lock()
				r.timeout = true
				r.mu.Unlock()
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		fmt.Fprintf(w, "answer for %s\n", req.URL.Path)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r
}

func (r *rendezvous) timedOut() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.timeout
}

// started reports whether the recorded events include the start of a
// vertex whose name contains each of names.
func (e *engine) started(names ...string) bool {
	for _, n := range names {
		found := false
		for _, ev := range e.recorded() {
			if ev.Kind == EventStart && strings.Contains(ev.Name, n) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// TestParallelStages checks that independent stages run at the same
// time: each stage's RUN is answered only once both RUNs have started.
func TestParallelStages(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	e.busybox()
	r := newRendezvous(t, func() bool { return e.started("[a 2/2] RUN", "[b 2/2] RUN") })
	srv := r.url
	df := fmt.Sprintf("FROM busybox AS a\nRUN wget -q -O /a %[1]s/a\n\nFROM busybox AS b\nRUN wget -q -O /b %[1]s/b\n\n"+
		"FROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n", srv)
	e.mustBuild(t.TempDir(), df, Request{Jobs: 2})
	if r.timedOut() {
		t.Fatal("the two stages' RUN steps did not run at the same time")
	}
	var aStart, aDone, bStart, bDone int
	for i, ev := range e.recorded() {
		switch {
		case ev.Kind == EventStart && strings.HasPrefix(ev.Name, "[a 2/2]"):
			aStart = i
		case ev.Kind == EventDone && strings.HasPrefix(ev.Name, "[a 2/2]"):
			aDone = i
		case ev.Kind == EventStart && strings.HasPrefix(ev.Name, "[b 2/2]"):
			bStart = i
		case ev.Kind == EventDone && strings.HasPrefix(ev.Name, "[b 2/2]"):
			bDone = i
		}
	}
	if !(aStart < bDone && bStart < aDone) {
		t.Errorf("events do not overlap: a %d..%d, b %d..%d", aStart, aDone, bStart, bDone)
	}
}

// TestCopyLink checks COPY --link: the link layers are built while the
// RUN before them runs, and after a base change they are cache hits with
// the same layer digests, while the non-link steps run again.
func TestCopyLink(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	e.busybox()
	e.mustBuild(t.TempDir(), "FROM busybox\n", Request{Tags: []string{"base"}})
	r := newRendezvous(t, func() bool { return e.started("d1/ /opt/d1/", "d2/ /opt/d2/") })
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "d1/one"), "1\n")
	writeFile(t, filepath.Join(dir, "d2/two"), "2\n")
	df := fmt.Sprintf("FROM base\nRUN wget -q -O /fetched %s/x\nCOPY --link d1/ /opt/d1/\nCOPY --link --chmod=0600 d2/ /opt/d2/\nRUN ls -R /opt > /list\n", r.url)
	first := e.mustBuild(dir, df, Request{Jobs: 3})
	if r.timedOut() {
		t.Fatal("the COPY --link steps did not start while the RUN before them ran")
	}
	r.release()
	_, m1 := e.image(first.Manifest.Digest)

	// A new base: same name, another image.
	e.mustBuild(t.TempDir(), "FROM busybox\nRUN echo v2 > /v2\n", Request{Tags: []string{"base"}})
	second := e.mustBuild(dir, "", Request{Jobs: 3})
	_, m2 := e.image(second.Manifest.Digest)
	n1, n2 := len(m1.Layers), len(m2.Layers)
	if n2 != n1+1 {
		t.Fatalf("layers %d then %d, want one more (the new base's)", n1, n2)
	}
	for i := 2; i <= 3; i++ {
		if m1.Layers[n1-i].Digest != m2.Layers[n2-i].Digest {
			t.Errorf("link layer %d: %s then %s, want the same bytes", i, m1.Layers[n1-i].Digest, m2.Layers[n2-i].Digest)
		}
	}
	cached := map[string]bool{}
	for _, s := range second.Steps {
		if s.Step > 0 {
			cached[s.Name[strings.Index(s.Name, "]")+2:]] = s.Cached
		}
	}
	want := map[string]bool{
		"RUN wget -q -O /fetched " + r.url + "/x": false,
		"COPY --link d1/ /opt/d1/":                true,
		"COPY --link --chmod=0600 d2/ /opt/d2/":   true,
		"RUN ls -R /opt > /list":                  false,
	}
	for k, v := range want {
		if got, ok := cached[k]; !ok || got != v {
			t.Errorf("step %q cached = %v (present %v), want %v", k, got, ok, v)
		}
	}
	e.fsck()
}

// TestOneJob builds stages that copy from each other with a single slot:
// a step waits for the stage it reads without holding the slot.
func TestOneJob(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	e.busybox()
	df := "FROM busybox AS a\nRUN echo a > /a\n\nFROM busybox\nCOPY --link --from=a /a /la\nCOPY --from=a /a /a\nRUN cat /a /la > /both\n"
	done := make(chan error, 1)
	go func() {
		_, err := e.build(t.TempDir(), df, Request{Jobs: 1})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("build with one job did not finish: deadlock")
	}
}

// TestConcurrentBuilds runs four builds of one Dockerfile at once on one
// store, through two Builders (two store handles, as two processes would
// have): all succeed with the same image, the base layer's missing
// snapshot is unpacked once, and the store is sound.
func TestConcurrentBuilds(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	base := e.busybox()
	cfg, _ := e.image(base.Manifest.Digest)
	if err := e.store.RemoveSnapshot(cfg.RootFS.DiffIDs[0]); err != nil {
		t.Fatal(err)
	}
	store2, err := oci.Open(e.root)
	if err != nil {
		t.Fatal(err)
	}
	defer store2.Close()
	b2 := New(store2, e.cache)
	b2.trace = e.b.trace
	e.resetCounts()
	dir := t.TempDir()
	writeDockerfile(t, dir, "FROM busybox\nRUN echo hi > /hi\n")
	var wg sync.WaitGroup
	digests := make([]string, 4)
	errs := make([]error, 4)
	for i := range 4 {
		b := e.b
		if i%2 == 1 {
			b = b2
		}
		wg.Go(func() {
			res, err := b.Build(context.Background(), Request{Context: dir, Dockerfile: filepath.Join(dir, "Dockerfile")})
			errs[i] = err
			if err == nil {
				digests[i] = res.Manifest.Digest.String()
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("build %d: %v", i, err)
		}
		if digests[i] != digests[0] {
			t.Errorf("build %d made %s, build 0 %s", i, digests[i], digests[0])
		}
	}
	if n := e.resetCounts()["apply"]; n != 1 {
		t.Errorf("the base layer was unpacked %d times, want once", n)
	}
	e.fsck()
}
