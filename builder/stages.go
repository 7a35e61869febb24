package builder

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// command is one instruction of a stage together with what planning
// resolved about it.
type command struct {
	instructions.Command
	from    *CopyFrom // COPY --from, resolved
	onBuild bool      // an ONBUILD trigger of the base
	loc     Location
}

// graph builds the stage DAG: bases, COPY --from sources, cycle check,
// the target, and the stages it needs (resolving their base images and
// ONBUILD triggers on the way).
func (p *planner) graph() error {
	for i := range p.stages {
		s, err := p.newStage(i)
		if err != nil {
			return err
		}
		p.plan.Stages = append(p.plan.Stages, s)
	}
	for _, s := range p.plan.Stages {
		if err := p.stageCommands(s); err != nil {
			return err
		}
	}
	if err := checkCycles(p.plan.Stages); err != nil {
		return p.src.errorAt(Location{}, "", err)
	}
	target, err := p.target()
	if err != nil {
		return p.src.errorAt(Location{}, "", err)
	}
	p.plan.Target = target
	if err := p.need(target, map[*Stage]bool{}); err != nil {
		return err
	}
	// Dependencies always precede their dependents in the Dockerfile
	// (dispatch checks it), so Dockerfile order is a topological order.
	slices.SortFunc(p.plan.Order, func(a, b *Stage) int { return a.Index - b.Index })
	return nil
}

// newStage expands the FROM line of stage i with the global scope and
// classifies its base.
func (p *planner) newStage(i int) (*Stage, error) {
	st := &p.stages[i]
	s := &Stage{
		Index:    i,
		Name:     st.Name,
		Location: locationOf(st.Location),
		Original: st.SourceCode,
		Platform: p.plan.Platform,
	}
	s.DisplayName = s.Name
	if s.DisplayName == "" {
		s.DisplayName = fmt.Sprintf("stage-%d", i)
	}
	fail := func(err error) (*Stage, error) { return nil, p.src.errorAt(s.Location, s.Original, err) }
	ref, _, err := p.lex.ProcessWord(st.BaseName, p.global)
	if err != nil {
		return fail(err)
	}
	if ref == "" {
		return fail(fmt.Errorf("base name (%s) should not be blank", st.BaseName))
	}
	if st.Platform != "" {
		pl, _, err := p.lex.ProcessWord(st.Platform, p.global)
		if err != nil {
			return fail(fmt.Errorf("process arguments for platform %s: %w", st.Platform, err))
		}
		parsed, err := targetPlatform(pl)
		if err != nil || pl == "" {
			return fail(fmt.Errorf("empty or invalid platform value from expression %s", st.Platform))
		}
		s.Platform = parsed
	}
	s.From = Base{Ref: ref}
	if nc, ok := p.contexts[contextKey(s.Name)]; ok && s.Name != "" {
		// A build context named like the stage replaces the stage.
		s.From = p.contextBase(ref, nc)
		p.replaced[s] = true
		return s, nil
	}
	if base := p.stageByName(ref, i); base != nil {
		s.From = Base{Kind: FromStage, Ref: ref, Stage: base}
		return s, nil
	}
	if nc, ok := p.contexts[contextKey(ref)]; ok {
		s.From = p.contextBase(ref, nc)
		return s, nil
	}
	if ref != "scratch" {
		s.From.Kind = FromImage
	}
	return s, nil
}

func (p *planner) contextBase(ref string, nc namedContext) Base {
	if nc.kind == contextDir {
		return Base{Kind: FromDir, Ref: ref, Dir: nc.value}
	}
	return Base{Kind: FromImage, Ref: nc.value}
}

// stageByName finds a stage defined before index before (FROM can only
// name earlier stages; a later name is an image name, as in BuildKit).
func (p *planner) stageByName(name string, before int) *Stage {
	name = strings.ToLower(name)
	for _, s := range p.plan.Stages[:min(before, len(p.plan.Stages))] {
		if s.Name != "" && s.Name == name {
			return s
		}
	}
	return nil
}

// stageCommands collects the stage's own commands, resolving COPY --from.
func (p *planner) stageCommands(s *Stage) error {
	if s.From.Kind == FromStage {
		addDep(s, s.From.Stage)
	}
	if p.replaced[s] {
		return nil
	}
	for _, ic := range p.stages[s.Index].Commands {
		c, err := p.newCommand(s, ic, false)
		if err != nil {
			return err
		}
		p.commands[s] = append(p.commands[s], c)
	}
	return nil
}

func (p *planner) newCommand(s *Stage, ic instructions.Command, onBuild bool) (*command, error) {
	c := &command{Command: ic, onBuild: onBuild, loc: locationOf(ic.Location())}
	if onBuild {
		c.loc = s.Location
	}
	if a, ok := ic.(*instructions.ArgCommand); ok {
		for _, kv := range a.Args {
			p.declared[kv.Key] = true
		}
	}
	cp, ok := ic.(*instructions.CopyCommand)
	if !ok || cp.From == "" {
		return c, nil
	}
	from, err := p.resolveFrom(cp.From)
	if err != nil {
		return nil, p.src.errorAt(c.loc, cp.String(), err)
	}
	c.from = &from
	if from.Stage != nil {
		addDep(s, from.Stage)
	}
	return c, nil
}

// resolveFrom classifies a COPY --from value: stage index, stage name,
// build context, or image.
func (p *planner) resolveFrom(ref string) (CopyFrom, error) {
	res, err := p.lex.ProcessWordWithMatches(ref, shell.EnvsFromSlice(nil))
	if err != nil || res.Result != ref {
		return CopyFrom{}, errors.New("variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround")
	}
	if idx, err := strconv.Atoi(ref); err == nil {
		if idx < 0 || idx >= len(p.plan.Stages) {
			return CopyFrom{}, fmt.Errorf("invalid stage index %d", idx)
		}
		return CopyFrom{Kind: FromStageResult, Ref: ref, Stage: p.plan.Stages[idx]}, nil
	}
	if s := p.stageByName(ref, len(p.plan.Stages)); s != nil {
		return CopyFrom{Kind: FromStageResult, Ref: ref, Stage: s}, nil
	}
	if nc, ok := p.contexts[contextKey(ref)]; ok {
		if nc.kind == contextDir {
			return CopyFrom{Kind: FromNamedDir, Ref: ref, Dir: nc.value}, nil
		}
		return CopyFrom{Kind: FromImageRoot, Ref: nc.value}, nil
	}
	return CopyFrom{Kind: FromImageRoot, Ref: ref}, nil
}

func addDep(s, dep *Stage) {
	for _, d := range s.Deps {
		if d == dep {
			return
		}
	}
	s.Deps = append(s.Deps, dep)
}

// checkCycles rejects stages that depend on themselves, directly or not.
func checkCycles(stages []*Stage) error {
	const (
		unseen = iota
		visiting
		done
	)
	state := map[*Stage]int{}
	var visit func(s *Stage) error
	visit = func(s *Stage) error {
		switch state[s] {
		case visiting:
			return fmt.Errorf("circular dependency detected on stage: %s", s.DisplayName)
		case done:
			return nil
		}
		state[s] = visiting
		for _, d := range s.Deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[s] = done
		return nil
	}
	for _, s := range stages {
		if err := visit(s); err != nil {
			return err
		}
	}
	return nil
}

// target returns the stage Request.Target names, or the last stage.
func (p *planner) target() (*Stage, error) {
	all := p.plan.Stages
	if p.req.Target == "" {
		return all[len(all)-1], nil
	}
	if s := p.stageByName(p.req.Target, len(all)); s != nil {
		return s, nil
	}
	var names []string
	for _, s := range all {
		if s.Name != "" {
			names = append(names, s.Name)
		}
	}
	list := "the Dockerfile has no named stages"
	if len(names) > 0 {
		list = "stages: " + strings.Join(names, ", ")
	}
	return nil, fmt.Errorf("target stage %q could not be found (%s): %w", p.req.Target, list, ErrNotFound)
}

// need adds s and everything it depends on to Plan.Order, dependencies
// first. Base images are resolved here (only for needed stages), and the
// base's ONBUILD triggers become the first commands of s, possibly adding
// COPY --from dependencies.
func (p *planner) need(s *Stage, visiting map[*Stage]bool) error {
	if visiting[s] {
		return p.src.errorAt(s.Location, s.Original, fmt.Errorf("circular dependency detected on stage: %s", s.DisplayName))
	}
	for _, o := range p.plan.Order {
		if o == s {
			return nil
		}
	}
	visiting[s] = true
	defer delete(visiting, s)
	if s.From.Kind == FromStage {
		addDep(s, s.From.Stage)
		if err := p.need(s.From.Stage, visiting); err != nil {
			return err
		}
	}
	if err := p.resolveBase(s); err != nil {
		return err
	}
	if err := p.addTriggers(s); err != nil {
		return err
	}
	for _, c := range p.commands[s] {
		if c.from != nil && c.from.Kind == FromImageRoot && c.from.Image == nil && c.from.Ref != "scratch" {
			img, err := p.image(c.from.Ref, s.Platform)
			if err != nil {
				return p.src.errorAt(c.loc, c.String(), err)
			}
			c.from.Image = img
		}
	}
	for _, d := range s.Deps {
		if err := p.need(d, visiting); err != nil {
			return err
		}
	}
	p.plan.Order = append(p.plan.Order, s)
	return nil
}

func (p *planner) resolveBase(s *Stage) error {
	if s.From.Kind != FromImage || s.From.Image != nil {
		return nil
	}
	img, err := p.image(s.From.Ref, s.Platform)
	if err != nil {
		return p.src.errorAt(s.Location, s.Original, err)
	}
	s.From.Image = img
	return nil
}

func (p *planner) image(ref string, platform v1.Platform) (*BaseImage, error) {
	if p.images == nil {
		return nil, fmt.Errorf("image %q: %w (no image store configured)", ref, ErrNotFound)
	}
	img, err := p.images.Image(p.ctx, ref, platform)
	if err != nil {
		return nil, err
	}
	if img == nil || img.Config == nil {
		return nil, fmt.Errorf("image %q: no config", ref)
	}
	return img, nil
}

// addTriggers prepends the base's ONBUILD triggers to the commands of s:
// the base image's config OnBuild, or the ONBUILD instructions of the base
// stage (triggers do not carry over further, as in BuildKit).
func (p *planner) addTriggers(s *Stage) error {
	var triggers []string
	switch s.From.Kind {
	case FromImage:
		triggers = s.From.Image.Config.Config.OnBuild
	case FromStage:
		for _, ic := range p.stages[s.From.Stage.Index].Commands {
			if ob, ok := ic.(*instructions.OnbuildCommand); ok {
				triggers = append(triggers, ob.Expression)
			}
		}
	}
	var cmds []*command
	for _, t := range triggers {
		ic, err := parseTrigger(t, s.Location)
		if err != nil {
			return p.src.errorAt(s.Location, s.Original, fmt.Errorf("ONBUILD trigger %q: %w", t, err))
		}
		c, err := p.newCommand(s, ic, true)
		if err != nil {
			return err
		}
		cmds = append(cmds, c)
	}
	p.commands[s] = append(cmds, p.commands[s]...)
	return nil
}

func parseTrigger(expr string, loc Location) (instructions.Command, error) {
	res, err := parser.Parse(strings.NewReader(expr))
	if err != nil {
		return nil, err
	}
	if len(res.AST.Children) != 1 {
		return nil, errors.New("onbuild trigger should be a single expression")
	}
	node := res.AST.Children[0]
	node.StartLine, node.EndLine = loc.Start, loc.End
	return instructions.ParseCommand(node)
}

// String is the instruction as written (continuation lines joined).
func (c *command) String() string {
	if s, ok := c.Command.(fmt.Stringer); ok {
		return s.String()
	}
	return c.Name()
}
