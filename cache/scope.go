package cache

import "strings"

// Scope is the part of a stage's state that steps may observe, as the
// builder tracks it while walking a stage. [Scope.Observed] picks what one
// step kind observes; the table of which step observes what is in
// docs/cache.md, "What each step observes".
type Scope struct {
	// Env is the image config's Env ("NAME=value"), the base image's
	// included, after every ENV so far.
	Env []string
	// Args are the build args in scope that have a value (declared by ARG
	// in this stage, value from --build-arg or the default). Predefined
	// proxy args (HTTP_PROXY, …) belong here only if the Dockerfile
	// declares them, like Docker, so a proxy change does not invalidate.
	Args map[string]string
	// Workdir is the config's WorkingDir.
	Workdir string
	// User is the config's User, as written ("app", "1000:1000").
	User string
	// Shell is the effective SHELL; nil means Docker's ["/bin/sh", "-c"].
	Shell []string
}

// Observes is a set of the [Scope] parts a step observes.
type Observes uint8

// The parts of a [Scope].
const (
	ObserveEnv Observes = 1 << iota
	ObserveArgs
	ObserveWorkdir
	ObserveUser
	ObserveShell
)

// What each filesystem step observes, following BuildKit: an ARG in scope
// changes a RUN's key but not a COPY's unless the COPY's expansion uses it
// (then the expanded instruction changes).
const (
	// ObservesRunShell: shell-form RUN, and heredoc RUN without a shebang.
	ObservesRunShell = ObserveEnv | ObserveArgs | ObserveWorkdir | ObserveUser | ObserveShell
	// ObservesRunExec: exec-form RUN, and a single heredoc with a shebang
	// (run as a file, not through SHELL).
	ObservesRunExec = ObserveEnv | ObserveArgs | ObserveWorkdir | ObserveUser
	// ObservesCopy: COPY/ADD with an absolute destination. Files are
	// created 0:0 unless --chown says otherwise, so USER is not observed.
	ObservesCopy Observes = 0
	// ObservesCopyRelative: COPY/ADD whose destination is relative to
	// WORKDIR.
	ObservesCopyRelative = ObserveWorkdir
	// ObservesWorkdir: WORKDIR with an absolute path. The directories it
	// creates are owned by USER (BuildKit's mkdir WithUser).
	ObservesWorkdir = ObserveUser
	// ObservesWorkdirRelative: WORKDIR with a relative path, which
	// resolves against the previous WORKDIR.
	ObservesWorkdirRelative = ObserveUser | ObserveWorkdir
)

// Observed returns the env part of a step's [Parts] for a step that
// observes o. ARGs shadowed by an ENV of the same name are left out: the
// step sees the ENV value.
func (s Scope) Observed(o Observes) []EnvVar {
	var out []EnvVar
	envNames := make(map[string]bool, len(s.Env))
	for _, kv := range s.Env {
		name, value, _ := strings.Cut(kv, "=")
		envNames[name] = true
		if o&ObserveEnv != 0 {
			out = append(out, EnvVar{Kind: EnvENV, Name: name, Value: value})
		}
	}
	if o&ObserveArgs != 0 {
		for name, value := range s.Args {
			if !envNames[name] {
				out = append(out, EnvVar{Kind: EnvARG, Name: name, Value: value})
			}
		}
	}
	if o&ObserveWorkdir != 0 {
		out = append(out, EnvVar{Kind: EnvWorkdir, Value: s.Workdir})
	}
	if o&ObserveUser != 0 {
		out = append(out, EnvVar{Kind: EnvUser, Value: s.User})
	}
	if o&ObserveShell != 0 {
		shell := s.Shell
		if shell == nil {
			shell = []string{"/bin/sh", "-c"}
		}
		out = append(out, EnvVar{Kind: EnvShell, Value: jsonStrings(shell)})
	}
	return out
}

// jsonStrings renders a string list as a canonical JSON array.
func jsonStrings(list []string) string {
	var w canonWriter
	w.beginArray()
	for _, s := range list {
		w.elem().str(s)
	}
	w.endArray()
	return string(w.b)
}
