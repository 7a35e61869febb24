package cache_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"minibuild/cache"
)

func TestScopeObserved(t *testing.T) {
	t.Parallel()
	scope := cache.Scope{
		Env:     []string{"PATH=/usr/bin", "VERSION=from-env", "EMPTY="},
		Args:    map[string]string{"VERSION": "1.2", "DEBUG": "1"},
		Workdir: "/src",
		User:    "app",
	}
	env := func(name, value string) cache.EnvVar {
		return cache.EnvVar{Kind: cache.EnvENV, Name: name, Value: value}
	}
	allEnv := []cache.EnvVar{env("PATH", "/usr/bin"), env("VERSION", "from-env"), env("EMPTY", "")}
	arg := cache.EnvVar{Kind: cache.EnvARG, Name: "DEBUG", Value: "1"} // VERSION is shadowed by ENV
	wd := cache.EnvVar{Kind: cache.EnvWorkdir, Value: "/src"}
	user := cache.EnvVar{Kind: cache.EnvUser, Value: "app"}
	shell := cache.EnvVar{Kind: cache.EnvShell, Value: `["/bin/sh","-c"]`}
	tests := []struct {
		name string
		o    cache.Observes
		want []cache.EnvVar
	}{
		{"RUN shell form", cache.ObservesRunShell, append(append([]cache.EnvVar{}, allEnv...), arg, wd, user, shell)},
		{"RUN exec form", cache.ObservesRunExec, append(append([]cache.EnvVar{}, allEnv...), arg, wd, user)},
		{"COPY absolute", cache.ObservesCopy, nil},
		{"COPY relative", cache.ObservesCopyRelative, []cache.EnvVar{wd}},
		{"WORKDIR absolute", cache.ObservesWorkdir, []cache.EnvVar{user}},
		{"WORKDIR relative", cache.ObservesWorkdirRelative, []cache.EnvVar{wd, user}},
	}
	sortEnv := cmpopts.SortSlices(func(a, b cache.EnvVar) bool {
		return a.Kind+cache.EnvKind(a.Name) < b.Kind+cache.EnvKind(b.Name)
	})
	for _, tt := range tests {
		got := scope.Observed(tt.o)
		if diff := cmp.Diff(tt.want, got, sortEnv, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: Observed() mismatch (-want +got):\n%s", tt.name, diff)
		}
	}
	custom := cache.Scope{Shell: []string{"/bin/bash", "-o", "pipefail", "-c"}}.Observed(cache.ObserveShell)
	if want := `["/bin/bash","-o","pipefail","-c"]`; len(custom) != 1 || custom[0].Value != want {
		t.Errorf("Observed(ObserveShell) = %v, want value %s", custom, want)
	}
}

// TestObservedKeys checks the BuildKit semantics at the key level: an
// unused ARG changes a RUN's key but not a COPY's.
func TestObservedKeys(t *testing.T) {
	t.Parallel()
	key := func(s cache.Scope, o cache.Observes, instr string) string {
		p := cache.Parts{Parent: cache.Scratch, Instruction: instr, Env: s.Observed(o), Platform: "linux/amd64"}
		return p.Key().String()
	}
	a := cache.Scope{Args: map[string]string{"UNUSED": "1"}, User: "root", Workdir: "/"}
	b := cache.Scope{Args: map[string]string{"UNUSED": "2"}, User: "app", Workdir: "/"}
	if key(a, cache.ObservesRunShell, "RUN true") == key(b, cache.ObservesRunShell, "RUN true") {
		t.Errorf("RUN key did not change with an ARG in scope")
	}
	if key(a, cache.ObservesCopy, "COPY a /a") != key(b, cache.ObservesCopy, "COPY a /a") {
		t.Errorf("COPY key changed with an unused ARG or USER")
	}
	c := cache.Scope{Workdir: "/app"}
	if key(a, cache.ObservesCopyRelative, "COPY a a") == key(c, cache.ObservesCopyRelative, "COPY a a") {
		t.Errorf("relative COPY key did not change with WORKDIR")
	}
}

func TestInstructionString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   cache.Instruction
		want string
	}{
		{cache.Instruction{Keyword: "run", Shell: "apt-get update && apt-get install -y curl"},
			"RUN apt-get update && apt-get install -y curl"},
		{cache.Instruction{Keyword: "RUN", Exec: []string{"make", "all"}}, `RUN ["make","all"]`},
		{cache.Instruction{Keyword: "RUN", Flags: []cache.Flag{{"network", "none"}, {"mount", "type=cache,target=/root/.cache"}}, Shell: "make"},
			"RUN --mount=type=cache,target=/root/.cache --network=none make"},
		{cache.Instruction{Keyword: "COPY", Flags: []cache.Flag{{"chmod", "755"}, {"chown", "app:app"}}, Args: []string{"src/", "/app/"}},
			"COPY --chmod=755 --chown=app:app src/ /app/"},
		{cache.Instruction{Keyword: "COPY", Args: []string{"my file.txt", "-weird", "[x]", "/dst/"}},
			`COPY "my file.txt" "-weird" "[x]" /dst/`},
		{cache.Instruction{Keyword: "COPY", Args: []string{"<<EOF", "/etc/motd"}, Heredocs: []cache.Heredoc{{Name: "EOF", Body: "hello\n"}}},
			"COPY <<EOF /etc/motd\n<<EOF\nhello\nEOF"},
		{cache.Instruction{Keyword: "WORKDIR", Args: []string{"/app"}}, "WORKDIR /app"},
		{cache.Instruction{Keyword: "ADD", Flags: []cache.Flag{{"checksum", "sha256:abc"}}, Args: []string{"https://example.com/a b", "/a"}},
			`ADD --checksum=sha256:abc "https://example.com/a b" /a`},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.in, got, tt.want)
		}
	}
	// Flag order given does not matter.
	x := cache.Instruction{Keyword: "RUN", Flags: []cache.Flag{{"b", "1"}, {"a", "2"}}, Shell: "x"}
	y := cache.Instruction{Keyword: "RUN", Flags: []cache.Flag{{"a", "2"}, {"b", "1"}}, Shell: "x"}
	if x.String() != y.String() {
		t.Errorf("flag order changes the text: %q vs %q", x, y)
	}
	// A flag-looking argument never reads like a flag.
	f := cache.Instruction{Keyword: "COPY", Flags: []cache.Flag{{"chmod", "755"}}, Args: []string{"a", "/b"}}
	a := cache.Instruction{Keyword: "COPY", Args: []string{"--chmod=755", "a", "/b"}}
	if f.String() == a.String() {
		t.Errorf("flag and argument render the same: %q", f)
	}
}
