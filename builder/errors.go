package builder

import (
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Sentinel errors callers branch on.
var (
	// ErrNotFound: a COPY/ADD source, a build stage or a base image does
	// not exist.
	ErrNotFound = errors.New("not found")
	// ErrUnsafePath: a COPY/ADD source escapes the build context (through
	// "..", an absolute path reached by a symlink, or a symlink leading
	// out), or an archive entry would be written outside its destination.
	ErrUnsafePath = errors.New("unsafe path")
	// ErrNoSources: a COPY/ADD selected no file at all, typically because
	// .dockerignore excludes everything it names.
	ErrNoSources = errors.New("no source files were specified")
	// ErrUnsupported: the Dockerfile uses a feature minibuild does not
	// implement (or the platform cannot run it).
	ErrUnsupported = errors.New("not supported")
)

// Location is a range of Dockerfile lines, 1-based and inclusive. The zero
// value means "not tied to a line".
type Location struct {
	Start, End int
}

// String is "12" or "12-14".
func (l Location) String() string {
	if l.End > l.Start {
		return fmt.Sprintf("%d-%d", l.Start, l.End)
	}
	return fmt.Sprint(l.Start)
}

// SourceLine is one line of the Dockerfile, for excerpts.
type SourceLine struct {
	Number int    // 1-based
	Text   string // without the trailing newline
	// Highlight marks the lines the error is about (the others are
	// context around them).
	Highlight bool
}

// DockerfileError ties a failure to the Dockerfile lines that caused it.
// Its Error string is one line: "Dockerfile:12: unknown instruction:
// COPYY" for a Dockerfile that cannot be planned, "step 3/7
// (Dockerfile:12) RUN make: exit code 2" for a step that failed while
// building. Excerpt carries the lines around the location and Output the
// last lines a failed RUN printed, so the CLI can show them under the
// message, BuildKit style.
type DockerfileError struct {
	File     string   // the Dockerfile as named in the request
	Location Location // zero when the error concerns the whole file
	Stage    string   // stage name ("stage-N" when unnamed); "" during parsing
	// Instruction is the instruction text as written (continuation lines
	// joined); "" for errors that are not about one instruction.
	Instruction string
	Excerpt     []SourceLine
	// Step and Steps number a step that failed while building, as
	// progress output does ("[stage 3/7]": FROM and filesystem steps);
	// zero for errors found while planning.
	Step, Steps int
	// ExitCode is the exit status of a RUN that failed (0 otherwise);
	// errors.As on Err finds the *exec.ExitError as well.
	ExitCode int
	// Output holds the last lines a failed RUN wrote (stdout and stderr
	// interleaved), oldest first.
	Output []string
	Err    error
}

func (e *DockerfileError) Error() string {
	switch {
	case e.Step > 0:
		return fmt.Sprintf("step %d/%d (%s:%s) %s: %v", e.Step, e.Steps, e.File, e.Location, oneLine(e.Instruction), e.Err)
	case e.Location.Start > 0:
		return fmt.Sprintf("%s:%s: %v", e.File, e.Location, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

// oneLine shortens an instruction for a one-line message: its first line,
// with an ellipsis when there is more (heredocs).
func oneLine(s string) string {
	if first, _, ok := strings.Cut(s, "\n"); ok {
		return first + " …"
	}
	return s
}

// Unwrap returns the cause.
func (e *DockerfileError) Unwrap() error { return e.Err }

// excerptContext is how many lines before and after the location an
// excerpt shows.
const excerptContext = 2

// source is the Dockerfile text with what error construction needs.
type source struct {
	name  string
	lines []string
}

func newSource(name string, data []byte) *source {
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	return &source{name: name, lines: strings.Split(strings.TrimSuffix(text, "\n"), "\n")}
}

// errorAt wraps err in a DockerfileError for loc. An err that already is a
// DockerfileError is returned unchanged.
func (s *source) errorAt(loc Location, instruction string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*DockerfileError](err); ok {
		return err
	}
	return &DockerfileError{
		File:        s.name,
		Location:    loc,
		Instruction: instruction,
		Excerpt:     s.excerpt(loc),
		Err:         err,
	}
}

func (s *source) excerpt(loc Location) []SourceLine {
	if loc.Start <= 0 || loc.Start > len(s.lines) {
		return nil
	}
	end := max(loc.End, loc.Start)
	first := max(1, loc.Start-excerptContext)
	last := min(len(s.lines), end+excerptContext)
	out := make([]SourceLine, 0, last-first+1)
	for n := first; n <= last; n++ {
		out = append(out, SourceLine{Number: n, Text: s.lines[n-1], Highlight: n >= loc.Start && n <= end})
	}
	return out
}

// fromParseError turns an error of BuildKit's parser or instructions
// package into a DockerfileError, keeping BuildKit's message but not its
// "dockerfile parse error on line N:" prefix (the location says that).
func (s *source) fromParseError(err error) error {
	le, ok := errors.AsType[*parser.LocationError](err)
	if !ok {
		return s.errorAt(Location{}, "", err)
	}
	loc := locationOf(le.Locations...)
	cause := le.Unwrap()
	if cause == nil {
		cause = err
	}
	return s.errorAt(loc, "", cause)
}

// locationOf merges BuildKit ranges into one line range.
func locationOf(ranges ...[]parser.Range) Location {
	var l Location
	for _, rs := range ranges {
		for _, r := range rs {
			if l.Start == 0 || r.Start.Line < l.Start {
				l.Start = r.Start.Line
			}
			l.End = max(l.End, r.End.Line, r.Start.Line)
		}
	}
	return l
}
