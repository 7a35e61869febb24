package builder

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// defaultPath is the PATH BuildKit puts in every Linux image that lacks one.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// historyComment marks history entries written from a Dockerfile, with
// BuildKit's value so tools that recognize BuildKit history recognize ours.
const historyComment = "buildkit.dockerfile.v0"

// stageState is everything one stage accumulates while its instructions
// are dispatched. One per stage; instructions change it only through the
// dispatch functions, one per instruction.
type stageState struct {
	p      *planner
	stage  *Stage
	config *v1.ConfigFile // the image config being built (a deep copy)
	env    *scope         // ENV and ARG values: expansion and RUN's environment
	args   []stageArg     // ARGs declared in scope, for RUN's history line
	cmdSet bool           // CMD was set in this stage (ENTRYPOINT then keeps it)
}

// stageArg is a declared ARG and its value (nil: declared without one).
type stageArg struct {
	key   string
	value *string
}

// newStageState starts a stage from its base: a deep copy of the base's
// config, and for a stage base also its ENV/ARG scope and declared ARGs
// (BuildKit carries both into stages built FROM another stage).
func (p *planner) newStageState(s *Stage, done map[*Stage]*stageState) (*stageState, error) {
	st := &stageState{p: p, stage: s}
	switch s.From.Kind {
	case FromScratch, FromDir:
		st.config = emptyConfig(s.Platform)
	case FromImage:
		st.config = cloneConfig(s.From.Image.Config)
		st.config.Config.OnBuild = nil // triggers run now; they do not carry over
		s.BaseName, s.BaseDigest = s.From.Image.Name, s.From.Image.Digest
	case FromStage:
		base, ok := done[s.From.Stage]
		if !ok || s.From.Stage.Index >= s.Index {
			return nil, fmt.Errorf("base stage %q must be defined before stage %q", s.From.Stage.DisplayName, s.DisplayName)
		}
		st.config = cloneConfig(base.config)
		st.config.Config.OnBuild = nil
		st.env = base.env.clone()
		st.args = slices.Clone(base.args)
		s.BaseName, s.BaseDigest = s.From.Stage.BaseName, s.From.Stage.BaseDigest
	}
	cfg := &st.config.Config
	if _, ok := scopeFromEnv(cfg.Env).Get("PATH"); !ok {
		cfg.Env = append(cfg.Env, "PATH="+defaultPath)
	}
	if st.env == nil {
		st.env = scopeFromEnv(cfg.Env)
	}
	if cfg.WorkingDir != "" {
		cfg.WorkingDir = normalizeWorkdir("", cfg.WorkingDir)
	}
	return st, nil
}

// emptyConfig is BuildKit's config for FROM scratch.
func emptyConfig(p v1.Platform) *v1.ConfigFile {
	return &v1.ConfigFile{
		Architecture: p.Architecture,
		OS:           p.OS,
		Variant:      p.Variant,
		OSVersion:    p.OSVersion,
		RootFS:       v1.RootFS{Type: "layers"},
		Config:       v1.Config{WorkingDir: "/", Env: []string{"PATH=" + defaultPath}},
	}
}

// cloneConfig deep-copies a config file: images are values.
func cloneConfig(c *v1.ConfigFile) *v1.ConfigFile {
	n := *c
	n.History = slices.Clone(c.History)
	n.OSFeatures = slices.Clone(c.OSFeatures)
	n.RootFS.DiffIDs = slices.Clone(c.RootFS.DiffIDs)
	cfg := &n.Config
	cfg.Cmd = slices.Clone(c.Config.Cmd)
	cfg.Entrypoint = slices.Clone(c.Config.Entrypoint)
	cfg.Env = slices.Clone(c.Config.Env)
	cfg.OnBuild = slices.Clone(c.Config.OnBuild)
	cfg.Shell = slices.Clone(c.Config.Shell)
	cfg.Labels = maps.Clone(c.Config.Labels)
	cfg.Volumes = maps.Clone(c.Config.Volumes)
	cfg.ExposedPorts = maps.Clone(c.Config.ExposedPorts)
	if c.Config.Healthcheck != nil {
		h := *c.Config.Healthcheck
		h.Test = slices.Clone(h.Test)
		cfg.Healthcheck = &h
	}
	return &n
}

// newStep starts the step for c, recording what it observes before it
// runs.
func (st *stageState) newStep(c *command) *Step {
	return &Step{
		Stage:    st.stage,
		Location: c.loc,
		Original: c.String(),
		Display:  st.display(c),
		Env:      st.observe(),
		OnBuild:  c.onBuild,
	}
}

// observe is the StepEnv at this point of the stage.
func (st *stageState) observe() StepEnv {
	env := st.env.environ()
	sort.Strings(env)
	var args map[string]string
	for _, a := range st.args {
		v, ok := st.env.Get(a.key)
		if !ok {
			continue
		}
		if args == nil {
			args = map[string]string{}
		}
		args[a.key] = v
	}
	return StepEnv{
		Env:        env,
		Config:     slices.Clone(st.config.Config.Env),
		Args:       args,
		WorkingDir: st.config.Config.WorkingDir,
		User:       st.config.Config.User,
		Shell:      slices.Clone(st.config.Config.Shell),
	}
}

// display is the instruction as BuildKit names its progress vertex: the
// source text expanded (RUN keeps quotes, escapes and unset variables),
// the instruction name uppercased.
func (st *stageState) display(c *command) string {
	lex := *st.p.lex
	if strings.EqualFold(c.Name(), "run") { // the parser keeps the case it was written in
		lex.RawQuotes, lex.RawEscapes, lex.SkipUnsetEnv = true, true, true
	}
	text := c.String()
	if w, _, err := lex.ProcessWord(text, st.env); err == nil {
		text = w
	}
	name, rest, _ := strings.Cut(text, " ")
	return strings.TrimSpace(strings.ToUpper(name) + " " + rest)
}

// commit records the step's history entry. Filesystem steps other than
// WORKDIR carry BuildKit's " # buildkit" suffix.
func (st *stageState) commit(step *Step, createdBy string, layer bool) {
	if step.Run != nil || step.Copy != nil {
		createdBy += " # buildkit"
	}
	h := v1.History{
		Created:    v1.Time{Time: st.p.plan.Epoch},
		CreatedBy:  createdBy,
		Comment:    historyComment,
		EmptyLayer: !layer,
	}
	step.History = h
	st.config.History = append(st.config.History, h)
}

// withShell prepends SHELL (or /bin/sh -c) to a shell-form command line.
func (st *stageState) withShell(args []string) []string {
	sh := slices.Clone(st.config.Config.Shell)
	if len(sh) == 0 {
		sh = []string{"/bin/sh", "-c"}
	}
	return append(sh, strings.Join(args, " "))
}

// normalizeWorkdir resolves wd against the current working directory like
// BuildKit's system.NormalizeWorkdir: a relative path is joined and
// cleaned, an absolute one is kept as written.
func normalizeWorkdir(current, wd string) string {
	if wd == "" {
		wd = current
	}
	if strings.HasPrefix(wd, "/") {
		return wd
	}
	if current == "" {
		current = "/"
	}
	if !strings.HasPrefix(current, "/") {
		current = "/" + current
	}
	return cleanJoin(current, wd)
}
