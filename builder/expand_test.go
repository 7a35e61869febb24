package builder

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// envOf returns the value of key in the target's final image ENV.
func envOf(p *Plan, key string) (string, bool) {
	for _, kv := range p.Target.Config.Config.Env {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			return v, true
		}
	}
	return "", false
}

// TestExpansion checks ARG/ENV scoping with Docker's rules. Cases after
// BuildKit's dockerfile_args_test.go (testGlobalArg, testArgDefaultExpansion,
// testMultiArgs, testDefaultEnvWithArgs, testBuiltinArgs) and Docker's
// reference ("ARG", "ENV", "Environment replacement").
func TestExpansion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		dockerfile string
		args       map[string]string
		want       map[string]string // ENV in the final config; "<unset>" for absent
	}{
		{"meta arg needs re-declaration", "ARG V=meta\nFROM scratch\nENV X=$V\nARG V\nENV Y=$V\n", nil,
			map[string]string{"X": "", "Y": "meta"}},
		{"build arg overrides meta default", "ARG V=meta\nFROM scratch\nARG V\nENV Y=$V\n", map[string]string{"V": "cli"},
			map[string]string{"Y": "cli"}},
		{"stage default beats meta", "ARG V=meta\nFROM scratch\nARG V=stage\nENV Y=$V\n", nil,
			map[string]string{"Y": "stage"}},
		{"build arg beats stage default", "FROM scratch\nARG V=stage\nENV Y=$V\n", map[string]string{"V": "cli"},
			map[string]string{"Y": "cli"}},
		{"ENV overrides ARG", "FROM scratch\nARG V=arg\nENV V=env\nENV Y=$V\n", map[string]string{"V": "cli"},
			map[string]string{"V": "env", "Y": "env"}},
		{"ARG default sees earlier ENV", "FROM scratch\nENV E=e\nARG A=${E}x\nENV Y=$A\n", nil,
			map[string]string{"Y": "ex"}},
		{"testArgDefaultExpansion", "FROM scratch\nENV FOO=fooval\nARG BAR=$FOO\nENV BAZ=${BAR}suffix\n", nil,
			map[string]string{"BAZ": "foovalsuffix"}},
		{"one ENV expands with the previous values", "FROM scratch\nENV A=1\nENV A=2 B=$A\n", nil,
			map[string]string{"A": "2", "B": "1"}},
		{"modifiers", "FROM scratch\nENV SET=v EMPTY=\nENV A=${UNSET:-dflt} B=${SET:-dflt} C=${SET:+alt} D=${UNSET:+alt} E=${EMPTY:-e} F=${EMPTY-f}\n", nil,
			map[string]string{"A": "dflt", "B": "v", "C": "alt", "D": "", "E": "e", "F": ""}},
		{"escapes and quotes", "FROM scratch\nENV V=v\nENV A=\\$V B='$V' C=\"$V\" D=\"a b\" E=a\\ b\n", nil,
			map[string]string{"A": "$V", "B": "$V", "C": "v", "D": "a b", "E": "a b"}},
		{"arg without value and without build arg", "FROM scratch\nARG NOVAL\nENV Y=${NOVAL:-unset}\n", nil,
			map[string]string{"Y": "unset"}},
		{"platform args are global only", "FROM scratch\nENV A=$TARGETARCH\nARG TARGETARCH\nARG BUILDPLATFORM\nENV B=$TARGETARCH C=$BUILDPLATFORM\n", nil,
			map[string]string{"A": "", "B": "amd64", "C": "linux/amd64"}},
		{"platform arg in FROM without declaration", "FROM --platform=$BUILDPLATFORM scratch AS s\nARG TARGETOS\nENV OS=$TARGETOS\n", nil,
			map[string]string{"OS": "linux"}},
		{"meta args reference platform args", "ARG IMG=img-$TARGETARCH\nFROM scratch\nARG IMG\nENV I=$IMG\n", nil,
			map[string]string{"I": "img-amd64"}},
		{"proxy args are not variables unless declared", "FROM scratch\nENV A=${HTTP_PROXY:-none}\nARG HTTP_PROXY\nENV B=$HTTP_PROXY\n", map[string]string{"HTTP_PROXY": "http://p"},
			map[string]string{"A": "none", "B": "http://p"}},
		{"args do not leak into the image ENV", "FROM scratch\nARG A=1\n", nil,
			map[string]string{"A": "<unset>"}},
		{"SOURCE_DATE_EPOCH is an arg", "FROM scratch\nARG SOURCE_DATE_EPOCH\nENV S=$SOURCE_DATE_EPOCH\n", map[string]string{"SOURCE_DATE_EPOCH": "1234"},
			map[string]string{"S": "1234"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := mustParse(t, tc.dockerfile, Request{BuildArgs: tc.args}, nil)
			for k, want := range tc.want {
				got, ok := envOf(p, k)
				if !ok {
					got = "<unset>"
				}
				if got != want {
					t.Errorf("ENV %s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

// TestArgScopeAcrossStages: an ARG belongs to its stage; a stage built
// FROM another stage inherits its scope (BuildKit carries llb state env).
func TestArgScopeAcrossStages(t *testing.T) {
	t.Parallel()
	df := "FROM scratch AS a\nARG A=1\nENV FROM_A=$A\n" +
		"FROM scratch AS b\nENV X=${A:-none}\n" +
		"FROM a AS c\nENV Y=$A\n"
	for target, want := range map[string]map[string]string{
		"b": {"X": "none"},
		"c": {"Y": "1", "FROM_A": "1"},
	} {
		p := mustParse(t, df, Request{Target: target}, nil)
		for k, v := range want {
			if got, _ := envOf(p, k); got != v {
				t.Errorf("target %s: ENV %s = %q, want %q", target, k, got, v)
			}
		}
	}
}

// TestExpandedWords checks which words each instruction expands, exactly
// like BuildKit (the instructions' Expand methods plus EXPOSE's
// ProcessWords): RUN, CMD, ENTRYPOINT, SHELL and HEALTHCHECK keep "$".
func TestExpandedWords(t *testing.T) {
	t.Parallel()
	df := `FROM scratch
ENV U=app G=grp M=755 W=/work P="80 90/udp" V=/vol S=SIGINT K=key D=/dst F=src H=hello
USER $U
WORKDIR $W
EXPOSE $P
VOLUME $V
STOPSIGNAL $S
LABEL $K=$H
COPY --chown=$U:$G --chmod=$M $F $D/
RUN echo $H
CMD echo $H
ENTRYPOINT ["echo", "$H"]
HEALTHCHECK CMD check $H
COPY <<EOF <<'RAW' /x/
$H
EOF
$H
RAW
`
	p := mustParse(t, df, Request{}, nil)
	var instructions []string
	for _, s := range p.Target.Steps[1:] {
		instructions = append(instructions, s.Instruction)
	}
	want := []string{
		"USER app",
		"WORKDIR /work",
		"EXPOSE 80/tcp 90/udp",
		"VOLUME /vol",
		"STOPSIGNAL SIGINT",
		"LABEL key=hello",
		"COPY --chmod=755 --chown=app:grp src /dst/",
		"RUN echo $H",
		`CMD ["/bin/sh","-c","echo $H"]`,
		`ENTRYPOINT ["echo","$H"]`,
		`HEALTHCHECK ["CMD-SHELL","check $H"]`,
		"COPY <<EOF <<RAW /x/\n<<EOF\nhello\nEOF\n<<RAW\n$H\nRAW",
	}
	if diff := cmp.Diff(want, instructions); diff != "" {
		t.Errorf("instructions (-want +got):\n%s", diff)
	}
	run := p.Target.Steps[8].Run
	if run == nil || !slices.Contains(run.Env, "H=hello") {
		t.Errorf("RUN env = %v, want the stage's ENV for the shell to expand", run)
	}
}

func TestStepEnvAndRunEnv(t *testing.T) {
	t.Parallel()
	df := "FROM scratch\nARG A=1\nENV E=2\nWORKDIR /w\nUSER u\nSHELL [\"/bin/bash\",\"-c\"]\nRUN --network=none true\n"
	p := mustParse(t, df, Request{BuildArgs: map[string]string{"http_proxy": "http://p", "NO_PROXY": "local"}}, nil)
	run := p.Target.Steps[len(p.Target.Steps)-1]
	want := StepEnv{
		Env:        []string{"A=1", "E=2", "PATH=" + defaultPath},
		Config:     []string{"PATH=" + defaultPath, "E=2"},
		Args:       map[string]string{"A": "1"},
		WorkingDir: "/w",
		User:       "u",
		Shell:      []string{"/bin/bash", "-c"},
	}
	if diff := cmp.Diff(want, run.Env); diff != "" {
		t.Errorf("StepEnv (-want +got):\n%s", diff)
	}
	wantRun := &RunOp{
		Args:       []string{"/bin/bash", "-c", "true"},
		Env:        []string{"PATH=" + defaultPath, "A=1", "E=2", "HTTP_PROXY=http://p", "http_proxy=http://p", "NO_PROXY=local", "no_proxy=local"},
		WorkingDir: "/w",
		User:       "u",
		Network:    "none",
		Security:   "sandbox",
	}
	if diff := cmp.Diff(wantRun, run.Run); diff != "" {
		t.Errorf("RunOp (-want +got):\n%s", diff)
	}
	if got, want := run.Instruction, "RUN --network=none true"; got != want {
		t.Errorf("Instruction = %q, want %q", got, want)
	}
	if run.Display != "RUN --network=none true" {
		t.Errorf("Display = %q", run.Display)
	}
}

func TestRunHeredocs(t *testing.T) {
	t.Parallel()
	df := "FROM scratch\nRUN <<EOF\necho $HOME\nEOF\nRUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\nRUN cat <<A <<B\n1\nA\n2\nB\n"
	p := mustParse(t, df, Request{}, nil)
	steps := p.Target.Steps
	if diff := cmp.Diff([]string{"/bin/sh", "-c", "echo $HOME\n"}, steps[0].Run.Args); diff != "" {
		t.Errorf("plain heredoc args (-want +got):\n%s", diff)
	}
	wantFile := []InlineFile{{Path: "/.minibuild-heredocs/EOF", Data: "#!/usr/bin/env python3\nprint(1)\n", Mode: 0o755}}
	if diff := cmp.Diff(wantFile, steps[1].Run.Files); diff != "" {
		t.Errorf("shebang heredoc files (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"/bin/sh", "-c", "cat <<A <<B\n1\nA\n2\nB"}, steps[2].Run.Args); diff != "" {
		t.Errorf("compound heredoc args (-want +got):\n%s", diff)
	}
}
