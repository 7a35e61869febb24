package builder

import (
	"fmt"
	"maps"
	"path"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// dispatchAll plans the stages of Plan.Order, in order: each stage's state
// starts from its base and every instruction updates it and yields a step.
func (p *planner) dispatchAll() error {
	done := map[*Stage]*stageState{}
	for _, s := range p.plan.Order {
		st, err := p.newStageState(s, done)
		if err != nil {
			return p.stageError(s, s.Location, s.Original, err)
		}
		for _, c := range p.commands[s] {
			step, err := st.dispatch(c, done)
			if err != nil {
				return p.stageError(s, c.loc, c.String(), err)
			}
			if step != nil {
				s.Steps = append(s.Steps, step)
			}
		}
		for i, step := range s.Steps {
			step.Index, step.Total = i+1, len(s.Steps)
		}
		st.config.Created = v1.Time{Time: p.plan.Epoch}
		s.Config = st.config
		done[s] = st
	}
	p.finishTarget()
	return nil
}

func (p *planner) stageError(s *Stage, loc Location, text string, err error) error {
	e := p.src.errorAt(loc, text, err)
	if de, ok := e.(*DockerfileError); ok && de.Stage == "" {
		de.Stage = s.DisplayName
	}
	return e
}

// finishTarget applies what BuildKit applies to the result image only:
// --label values, and the platform when --platform was given.
func (p *planner) finishTarget() {
	cfg := p.plan.Target.Config
	if len(p.req.Labels) > 0 {
		if cfg.Config.Labels == nil {
			cfg.Config.Labels = map[string]string{}
		}
		maps.Copy(cfg.Config.Labels, p.req.Labels)
	}
	if p.req.Platform != "" {
		t := p.plan.Platform
		cfg.OS, cfg.Architecture, cfg.Variant = t.OS, t.Architecture, t.Variant
	}
}

// dispatch expands c's words like BuildKit and hands it to the function of
// its instruction. ONBUILD yields no step (BuildKit writes no history for
// it); every other instruction yields one.
func (st *stageState) dispatch(c *command, done map[*Stage]*stageState) (*Step, error) {
	step := st.newStep(c)
	if err := st.expand(c); err != nil {
		return nil, err
	}
	var err error
	switch ic := c.Command.(type) {
	case *instructions.EnvCommand:
		err = dispatchEnv(st, step, ic)
	case *instructions.LabelCommand:
		err = dispatchLabel(st, step, ic)
	case *instructions.MaintainerCommand:
		err = dispatchMaintainer(st, step, ic)
	case *instructions.ArgCommand:
		err = dispatchArg(st, step, ic)
	case *instructions.WorkdirCommand:
		err = dispatchWorkdir(st, step, ic)
	case *instructions.UserCommand:
		err = dispatchUser(st, step, ic)
	case *instructions.ExposeCommand:
		err = dispatchExpose(st, step, ic)
	case *instructions.VolumeCommand:
		err = dispatchVolume(st, step, ic)
	case *instructions.StopSignalCommand:
		err = dispatchStopSignal(st, step, ic)
	case *instructions.ShellCommand:
		err = dispatchShell(st, step, ic)
	case *instructions.CmdCommand:
		err = dispatchCmd(st, step, ic)
	case *instructions.EntrypointCommand:
		err = dispatchEntrypoint(st, step, ic)
	case *instructions.HealthCheckCommand:
		err = dispatchHealthcheck(st, step, ic)
	case *instructions.OnbuildCommand:
		return nil, dispatchOnbuild(st, ic)
	case *instructions.RunCommand:
		err = dispatchRun(st, step, ic)
	case *instructions.CopyCommand:
		err = dispatchCopy(st, step, ic, c.from, done)
	case *instructions.AddCommand:
		err = dispatchAdd(st, step, ic)
	default:
		err = fmt.Errorf("instruction %s: %w", c.Name(), ErrUnsupported)
	}
	if err != nil {
		return nil, err
	}
	return step, nil
}

// expand runs BuildKit's own expansion hooks: the words each instruction
// type marks as expandable are processed against the stage scope (ARG does
// its own, since its default may be overridden). Heredoc bodies of COPY/ADD
// marked for expansion keep their quotes.
func (st *stageState) expand(c *command) error {
	if _, isArg := c.Command.(*instructions.ArgCommand); !isArg {
		if ex, ok := c.Command.(instructions.SupportsSingleWordExpansion); ok {
			err := ex.Expand(func(word string) (string, error) {
				w, _, err := st.p.lex.ProcessWord(word, st.env)
				return w, err
			})
			if err != nil {
				return err
			}
		}
	}
	if ex, ok := c.Command.(instructions.SupportsSingleWordExpansionRaw); ok {
		lex := shell.NewLex('\\')
		lex.SkipProcessQuotes = true
		return ex.ExpandRaw(func(word string) (string, error) {
			w, _, err := lex.ProcessWord(word, st.env)
			return w, err
		})
	}
	return nil
}

// cleanJoin is path.Join: joined and cleaned, slash-separated.
func cleanJoin(elem ...string) string { return path.Join(elem...) }
