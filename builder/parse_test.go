package builder

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		dockerfile string
		req        Request
		wantLines  Location // zero: not tied to a line
		wantMsg    string   // substring of Error()
		wantIs     error    // optional sentinel
	}{
		{"unknown instruction", "FROM scratch\nCOPYY a b\n", Request{}, Location{2, 2}, "Dockerfile:2: unknown instruction: COPYY", nil},
		{"unknown flag", "FROM scratch\nCOPY --bogus=1 a b\n", Request{}, Location{2, 2}, "unknown flag: --bogus", nil},
		{"bad FROM arity", "FROM a b\n", Request{}, Location{1, 1}, "FROM requires either one or three arguments", nil},
		{"SHELL not JSON", "FROM scratch\nSHELL sh -c\n", Request{}, Location{2, 2}, "SHELL requires the arguments to be in JSON form", nil},
		{"empty", "", Request{}, Location{}, "Dockerfile: the Dockerfile cannot be empty", nil},
		{"only comments", "# nothing\n\n", Request{}, Location{}, "file with no instructions", nil},
		{"no FROM", "ENV A=b\nFROM scratch\n", Request{}, Location{1, 1}, "no build stage in current context", nil},
		{"only ARGs", "ARG A=b\n", Request{}, Location{}, "dockerfile contains no stages to build", nil},
		{"heredoc without end", "FROM scratch\nCOPY <<EOF /x\nhello\n", Request{}, Location{2, 3}, "unterminated heredoc", nil},
		{"continuation spans lines", "FROM scratch\nRUN echo a \\\n  && bogus --x\nWRONG x\n", Request{}, Location{4, 4}, "unknown instruction: WRONG", nil},
		{"target not found", "FROM scratch AS build\nFROM scratch AS test\n", Request{Target: "prod"}, Location{}, `target stage "prod" could not be found (stages: build, test)`, ErrNotFound},
		{"copy from itself", "FROM scratch AS a\nCOPY --from=a /x /y\n", Request{}, Location{}, "circular dependency detected on stage: a", nil},
		{"copy from later stage", "FROM scratch AS a\nCOPY --from=b /x /y\nFROM scratch AS b\nCOPY --from=a /y /z\n", Request{}, Location{}, "circular dependency detected", nil},
		{"copy from later stage, no cycle", "FROM scratch AS a\nCOPY --from=b /x /y\nFROM scratch AS b\n", Request{Target: "a"}, Location{2, 2}, `cannot copy from stage "b", it needs to be defined before current stage "a"`, nil},
		{"bad stage index", "FROM scratch\nCOPY --from=3 /x /y\n", Request{}, Location{2, 2}, "invalid stage index 3", nil},
		{"variable in --from", "FROM scratch\nARG S=x\nCOPY --from=$S /x /y\n", Request{}, Location{3, 3}, "variable expansion is not supported for --from", nil},
		{"bad chmod", "FROM scratch\nCOPY --chmod=64a a /b\n", Request{}, Location{2, 2}, "invalid chmod parameter: '64a'. it should be octal string and between 0 and 07777", nil},
		{"chmod too large", "FROM scratch\nCOPY --chmod=10000 a /b\n", Request{}, Location{2, 2}, "invalid chmod parameter: '10000'", nil},
		{"bad symbolic chmod", "FROM scratch\nCOPY --chmod=u+q a /b\n", Request{}, Location{2, 2}, "invalid chmod parameter: 'u+q'", nil},
		{"blank base", "ARG B\nFROM $B\n", Request{}, Location{2, 2}, "base name ($B) should not be blank", nil},
		{"missing image", "FROM busybox\n", Request{}, Location{1, 1}, `image "busybox": not found`, ErrNotFound},
		{"chown name with link", "FROM scratch\nCOPY --link --chown=app a /b\n", Request{}, Location{2, 2}, "user and group names can't be resolved when used with --link", nil},
		{"URL in COPY", "FROM scratch\nCOPY http://example.com/a /b\n", Request{}, Location{2, 2}, "source can't be a URL for COPY", nil},
		{"checksum on local ADD", "FROM scratch\nADD --checksum=sha256:" + strings.Repeat("0", 64) + " a /b\n", Request{}, Location{2, 2}, "checksum requires HTTP(S) or Git sources", nil},
		{"git ADD", "FROM scratch\nADD https://github.com/moby/buildkit.git /b\n", Request{}, Location{2, 2}, "ADD from a git repository", ErrUnsupported},
		{"bad stop signal", "FROM scratch\nSTOPSIGNAL SIGNOPE\n", Request{}, Location{2, 2}, "invalid signal: SIGNOPE", nil},
		{"bad expose", "FROM scratch\nEXPOSE 80/icmp\n", Request{}, Location{2, 2}, "invalid proto: icmp", nil},
		{"bad escape directive", "# escape=x\nFROM scratch\n", Request{}, Location{}, "invalid escape token", nil},
		{"bad variable syntax", "FROM scratch\nENV A=${B\n", Request{}, Location{2, 2}, `failed to process "${B"`, nil},
		{"ONBUILD ONBUILD", "FROM scratch\nONBUILD ONBUILD RUN x\n", Request{}, Location{2, 2}, "Chaining ONBUILD", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseDockerfile(t, tc.dockerfile, tc.req, fakeImages{})
			if err == nil {
				t.Fatalf("Parse(%q) = nil error, want %q", tc.dockerfile, tc.wantMsg)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Parse(%q) = %q, want it to contain %q", tc.dockerfile, err, tc.wantMsg)
			}
			de, ok := errors.AsType[*DockerfileError](err)
			if !ok {
				t.Fatalf("Parse(%q) = %T, want *DockerfileError", tc.dockerfile, err)
			}
			if tc.wantLines != (Location{}) && de.Location != tc.wantLines {
				t.Errorf("Parse(%q) location = %v, want %v", tc.dockerfile, de.Location, tc.wantLines)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("Parse(%q) = %v, want errors.Is %v", tc.dockerfile, err, tc.wantIs)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("Parse(%q) error spans lines: %q", tc.dockerfile, err)
			}
		})
	}
}

func TestDockerfileErrorExcerpt(t *testing.T) {
	t.Parallel()
	_, err := parseDockerfile(t, "FROM scratch\nENV A=b\nLABEL x=y\nCOPYY a b\nENV C=d\nENV E=f\nENV G=h\n", Request{}, nil)
	de, ok := errors.AsType[*DockerfileError](err)
	if !ok {
		t.Fatalf("Parse = %v, want *DockerfileError", err)
	}
	want := []SourceLine{
		{2, "ENV A=b", false},
		{3, "LABEL x=y", false},
		{4, "COPYY a b", true},
		{5, "ENV C=d", false},
		{6, "ENV E=f", false},
	}
	if len(de.Excerpt) != len(want) {
		t.Fatalf("Excerpt = %+v, want %+v", de.Excerpt, want)
	}
	for i := range want {
		if de.Excerpt[i] != want[i] {
			t.Errorf("Excerpt[%d] = %+v, want %+v", i, de.Excerpt[i], want[i])
		}
	}
	if got, want := de.Error(), "Dockerfile:4: unknown instruction: COPYY"; !strings.HasPrefix(got, want) {
		t.Errorf("Error() = %q, want prefix %q", got, want)
	}
}

func TestParseDirectives(t *testing.T) {
	t.Parallel()
	// The escape directive switches the escape token to a backtick: a
	// backslash is then literal (Windows paths) and ` continues lines.
	p := mustParse(t, "# syntax=docker/dockerfile:1.7\n# escape=`\nFROM scratch\nENV P=C:\\dir `\n  Q=2\n", Request{}, nil)
	if p.Syntax != "docker/dockerfile:1.7" {
		t.Errorf("Syntax = %q, want docker/dockerfile:1.7", p.Syntax)
	}
	want := []string{`ENV P=C:\dir Q=2`}
	if got := createdBy(p); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("history = %q, want %q", got, want)
	}
}

func TestParseWarnings(t *testing.T) {
	t.Parallel()
	p := mustParse(t, "# syntax=example.com/frontend:2\nFROM scratch\nMAINTAINER me\n", Request{BuildArgs: map[string]string{"UNUSED": "1", "HTTP_PROXY": "x"}}, nil)
	var msgs []string
	for _, w := range p.Warnings {
		msgs = append(msgs, w.Message)
	}
	joined := strings.Join(msgs, "\n")
	for _, want := range []string{"MaintainerDeprecated", "build-args [UNUSED] were not consumed", "syntax example.com/frontend:2 is ignored"} {
		if !strings.Contains(joined, want) {
			t.Errorf("Warnings = %q, want one containing %q", msgs, want)
		}
	}
	if strings.Contains(joined, "HTTP_PROXY") {
		t.Errorf("Warnings = %q: a predefined proxy arg is never unused", msgs)
	}
}

// FuzzParse feeds arbitrary Dockerfiles to Parse: it must never panic, and
// every failure must be a *DockerfileError the CLI can print.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"FROM scratch\nCOPY . /\n",
		"ARG A=1\nFROM scratch AS a\nARG A\nENV B=${A:-x}\nRUN <<EOF\necho $B\nEOF\n",
		"# escape=`\nFROM scratch\nENV A=b `\n  C=d\n",
		"FROM scratch AS a\nONBUILD COPY --from=a x y\nFROM a\nCOPY --from=0 --chmod=u+x <<EOF /x\nhi\nEOF\n",
		"FROM scratch\nHEALTHCHECK --interval=1s CMD true\nEXPOSE 1-3/udp\nWORKDIR ../a\n",
	} {
		f.Add(seed)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, dockerfile string) {
		path := filepath.Join(t.TempDir(), "Dockerfile")
		if err := os.WriteFile(path, []byte(dockerfile), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Parse(t.Context(), Request{Dockerfile: path, Context: dir, Platform: "linux/amd64"}, nil)
		if err == nil {
			return
		}
		if _, ok := errors.AsType[*DockerfileError](err); !ok {
			t.Errorf("Parse error %T (%v), want *DockerfileError", err, err)
		}
	})
}
