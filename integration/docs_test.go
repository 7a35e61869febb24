package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The walkthrough of docs/cache.md is a script: a fenced block after
// "<!-- walkthrough: file NAME -->" is a file of the project, and a
// console block after "<!-- walkthrough: run -->" holds commands ("$ "
// lines) each followed by its output (standard output and standard
// error, as a terminal shows them).
const (
	walkFileMarker = "<!-- walkthrough: file "
	walkRunMarker  = "<!-- walkthrough: run -->"
)

// walkStep is a file to write or a command to run, in document order.
type walkStep struct {
	line    int    // in docs/cache.md
	file    string // set for a file
	body    string // the file's content
	command string // set for a command
	output  string // what the command prints
}

// parseWalkthrough reads the walkthrough steps of a Markdown document.
func parseWalkthrough(t *testing.T, doc string) []walkStep {
	t.Helper()
	lines := strings.Split(doc, "\n")
	var steps []walkStep
	for i := 0; i < len(lines); i++ {
		name, isFile := strings.CutPrefix(lines[i], walkFileMarker)
		if !isFile && lines[i] != walkRunMarker {
			continue
		}
		open := i + 1
		if open >= len(lines) || !strings.HasPrefix(lines[open], "```") {
			t.Fatalf("docs/cache.md:%d: a walkthrough marker must be followed by a fenced block", i+1)
		}
		end := open + 1
		for end < len(lines) && lines[end] != "```" {
			end++
		}
		if end == len(lines) {
			t.Fatalf("docs/cache.md:%d: unterminated block", open+1)
		}
		block := lines[open+1 : end]
		if isFile {
			steps = append(steps, walkStep{line: i + 1, file: strings.TrimSuffix(name, " -->"), body: strings.Join(block, "\n") + "\n"})
		} else {
			steps = append(steps, parseConsole(t, open+2, block)...)
		}
		i = end
	}
	return steps
}

// parseConsole splits a console block into commands and their outputs.
func parseConsole(t *testing.T, first int, block []string) []walkStep {
	t.Helper()
	var steps []walkStep
	for j, l := range block {
		if cmd, ok := strings.CutPrefix(l, "$ "); ok {
			steps = append(steps, walkStep{line: first + j, command: cmd})
			continue
		}
		if len(steps) == 0 {
			t.Fatalf("docs/cache.md:%d: output before the first command", first+j)
		}
		steps[len(steps)-1].output += l + "\n"
	}
	return steps
}

// digestRef matches a digest as minibuild prints it, in full or short.
var digestRef = regexp.MustCompile(`sha256:[0-9a-f]{12}(?:[0-9a-f]{52})?`)

// digestNames replaces digests by numbered names in order of first
// appearance (a short digest is the full one's first 12 digits), so two
// outputs compare equal when they name equal digests in the same
// places, whatever the digests are.
type digestNames map[string]string

func (n digestNames) normalize(s string) string {
	return digestRef.ReplaceAllStringFunc(s, func(d string) string {
		short := d[:len("sha256:")+12]
		if _, ok := n[short]; !ok {
			n[short] = fmt.Sprintf("<digest %d>", len(n)+1)
		}
		return n[short]
	})
}

// TestCacheDocWalkthrough runs the walkthrough of docs/cache.md with the
// real binary, in a fresh store with the busybox base, and compares every
// command's output with the document, so the tutorial cannot go stale.
func TestCacheDocWalkthrough(t *testing.T) {
	t.Parallel()
	doc := string(readFile(t, repoPath(t, "docs", "cache.md")))
	steps := parseWalkthrough(t, doc)
	if len(steps) < 10 {
		t.Fatalf("docs/cache.md has %d walkthrough steps, want the tutorial", len(steps))
	}
	e := newBuildEnv(t, busyboxArchive(t))
	project := e.Path("project")
	bin := e.Path("bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	symlink(t, e.Bin, filepath.Join(bin, "minibuild"))
	env := append(os.Environ(), "PATH="+bin+":/usr/sbin:/usr/bin:/sbin:/bin", "MINIBUILD_ROOT="+e.Root)

	docNames, gotNames := digestNames{}, digestNames{}
	for _, s := range steps {
		if s.file != "" {
			p := filepath.Join(project, s.file)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, p, []byte(s.body))
			continue
		}
		cmd := exec.CommandContext(t.Context(), "bash", "-o", "pipefail", "-c", s.command)
		cmd.Dir, cmd.Env = project, env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("docs/cache.md:%d: $ %s: %v\n%s", s.line, s.command, err, out.String())
		}
		want, got := docNames.normalize(s.output), gotNames.normalize(out.String())
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("docs/cache.md:%d: $ %s: output differs (-doc +real):\n%s\nreal output:\n%s", s.line, s.command, diff, out.String())
		}
	}
}
