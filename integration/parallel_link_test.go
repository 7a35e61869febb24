package integration

import (
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"minibuild/internal/testenv"
)

// linkSpans are the rawjson positions of the start and end of every
// vertex whose name contains "COPY --link", by name, and how each ended.
type linkSpan struct {
	start, end int
	how        string // done, cached, error
}

func linkSpans(events []rawEvent) map[string]*linkSpan {
	spans := map[string]*linkSpan{}
	byVertex := map[int]*linkSpan{}
	for i, ev := range events {
		if !strings.Contains(ev.Name, "COPY --link") {
			continue
		}
		switch ev.Kind {
		case "start":
			s := &linkSpan{start: i, end: -1}
			spans[ev.Name[strings.Index(ev.Name, "]")+2:]] = s
			byVertex[ev.Vertex] = s
		case "done", "cached", "error":
			if s := byVertex[ev.Vertex]; s != nil {
				s.end, s.how = i, ev.Kind
			}
		}
	}
	return spans
}

// TestCorpus04Link builds bench/corpus/04-copy-link (its gen.sh makes
// four directories of 50 MiB) on a fresh store. Cold, the four COPY --link
// layers are built concurrently: each one's start comes before every
// other's end in the progress events. Then "busybox" is moved to an image
// with one more layer: the rebuild finds the four link layers in the
// cache, and the image has the same four link layers, byte for byte, on
// top of the new base, while the RUN before them runs again.
func TestCorpus04Link(t *testing.T) {
	t.Parallel()
	testenv.RequireTool(t, "python3")
	e := newBuildEnv(t, busyboxArchive(t))
	ctx := e.Path("ctx")
	if out, err := exec.Command("cp", "-a", repoPath(t, "bench", "corpus", "04-copy-link")+"/.", ctx).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	if out, err := exec.Command("bash", repoPath(t, "bench", "corpus", "04-copy-link", "gen.sh"), ctx).CombinedOutput(); err != nil {
		t.Fatalf("gen.sh: %v: %s", err, out)
	}
	links := []string{"d1", "d2", "d3", "d4"}
	linkName := func(d string) string { return fmt.Sprintf("COPY --link %s/ /opt/data/%s/", d, d) }

	// Five slots: the RUN and the four link steps each have one.
	r := e.Run("build", "--jobs", "5", "--progress=rawjson", "-t", "c04", ctx)
	if r.ExitCode != 0 {
		t.Fatalf("cold build: %v", r)
	}
	cold := linkSpans(rawEvents(t, r.Stderr))
	for _, a := range links {
		sa := cold[linkName(a)]
		if sa == nil || sa.how != "done" {
			t.Fatalf("cold build: %s: %+v, want built", linkName(a), sa)
		}
		for _, b := range links {
			if sb := cold[linkName(b)]; sb != nil && sb.how == "done" && sa.start > sb.end {
				t.Errorf("cold build: %s started after %s ended: not concurrent", linkName(a), linkName(b))
			}
		}
	}
	before := e.inspect("c04").Manifest.Layers

	base := e.Path("newbase")
	writeContext(t, base, map[string]string{"Dockerfile": "FROM busybox\nRUN echo extra > /extra\n"})
	e.MustRun("build", "--progress=quiet", "-t", "busybox", base)
	r = e.Run("build", "--progress=rawjson", "-t", "c04", ctx)
	if r.ExitCode != 0 {
		t.Fatalf("build on the new base: %v", r)
	}
	events := rawEvents(t, r.Stderr)
	warm := linkSpans(events)
	for _, d := range links {
		if s := warm[linkName(d)]; s == nil || s.how != "cached" {
			t.Errorf("new base: %s: %+v, want a cache hit", linkName(d), s)
		}
	}
	ranMkdir := false
	for _, ev := range events {
		if ev.Kind == "done" && strings.HasSuffix(ev.Name, "RUN mkdir -p /opt/data") {
			ranMkdir = true
		}
	}
	if !ranMkdir {
		t.Errorf("new base: the RUN before the link steps did not run again:\n%s", r.Stderr)
	}
	after := e.inspect("c04").Manifest.Layers
	if len(after) != len(before)+1 {
		t.Fatalf("layers: %d, then %d on the new base, want one more", len(before), len(after))
	}
	for i := 1; i <= len(links); i++ {
		if b, a := before[len(before)-i], after[len(after)-i]; a.Digest != b.Digest {
			t.Errorf("link layer %d from the top: %s, then %s on the new base", i, b.Digest, a.Digest)
		}
	}
	e.Fsck()
}

// unpacks counts the "unpacking layer sha256:…" statuses of builds'
// rawjson output, by layer digest: a build reports one for each layer it
// unpacks into a snapshot itself.
func unpacks(t *testing.T, stderrs ...string) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, s := range stderrs {
		for _, ev := range rawEvents(t, s) {
			if d, ok := strings.CutPrefix(ev.Message, "unpacking layer "); ev.Kind == "status" && ok {
				n[d]++
			}
		}
	}
	return n
}

// TestOneUnpackPerLayer checks that a layer is unpacked into a snapshot
// once however many need it at the same time: two stages copying from
// one stage whose layers this store has never unpacked (singleflight in
// the process), and two builds in two processes needing the base's layer
// (the snapshot's lock file in the store).
func TestOneUnpackPerLayer(t *testing.T) {
	t.Parallel()
	archive := busyboxArchive(t)
	// An image of two layers no store below has unpacked: built in a
	// store of its own and imported.
	other := newBuildEnv(t, archive)
	octx := other.Path("ctx")
	writeContext(t, octx, map[string]string{"Dockerfile": "FROM busybox\nRUN echo data > /data\n"})
	other.MustRun("build", "--progress=quiet", "-t", "src", octx)
	srcTar := other.Path("src.tar")
	other.MustRun("save", "src", "--format", "oci", "-o", srcTar)

	t.Run("stages copying from one stage", func(t *testing.T) {
		e := newBuildEnv(t, archive)
		e.MustRun("import", srcTar, "-t", "src")
		ctx := e.Path("ctx")
		writeContext(t, ctx, map[string]string{"Dockerfile": `FROM src AS src
FROM busybox AS x
COPY --from=src /data /x
FROM busybox AS y
COPY --from=src /data /y
FROM busybox
COPY --from=x /x /x
COPY --from=y /y /y
`})
		r := e.Run("build", "--jobs", "2", "--progress=rawjson", ctx)
		if r.ExitCode != 0 {
			t.Fatalf("build: %v", r)
		}
		n := unpacks(t, r.Stderr)
		if len(n) != 2 {
			t.Errorf("unpacked %v, want the two layers of src", n)
		}
		for d, c := range n {
			if c != 1 {
				t.Errorf("layer %s unpacked %d times, want once", d, c)
			}
		}
		e.Fsck()
	})

	t.Run("concurrent builds", func(t *testing.T) {
		for round := range 3 {
			e := newBuildEnv(t, archive)
			results := make([]Result, 2)
			var wg sync.WaitGroup
			for i := range results {
				ctx := e.Path(fmt.Sprintf("ctx%d", i))
				writeContext(t, ctx, map[string]string{"Dockerfile": fmt.Sprintf("FROM busybox\nRUN echo %d > /n\n", i)})
				wg.Go(func() { results[i] = e.runIn("build", "--progress=rawjson", ctx) })
			}
			wg.Wait()
			for i, r := range results {
				if r.ExitCode != 0 {
					t.Fatalf("round %d, build %d: %v", round, i, r)
				}
			}
			n := unpacks(t, results[0].Stderr, results[1].Stderr)
			if len(n) != 1 {
				t.Errorf("round %d: unpacked %v, want busybox's layer", round, n)
			}
			for d, c := range n {
				if c != 1 {
					t.Errorf("round %d: layer %s unpacked %d times by two builds, want once", round, d, c)
				}
			}
			e.Fsck()
		}
	})
}
