package builder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Parse reads the Dockerfile of req and plans the build: stages, their
// dependencies, the stages the target needs (in Order) and every step with
// ARG/ENV expansion done. images resolves FROM and COPY --from images; it
// may be nil when the Dockerfile uses only scratch, stages and directories.
//
// Errors about the Dockerfile are *[DockerfileError] values carrying the
// line range and an excerpt.
func Parse(ctx context.Context, req Request, images ImageSource) (*Plan, error) {
	p, err := newPlanner(ctx, req, images)
	if err != nil {
		return nil, err
	}
	if err := p.parse(); err != nil {
		return nil, err
	}
	if err := p.graph(); err != nil {
		return nil, err
	}
	if err := p.dispatchAll(); err != nil {
		return nil, err
	}
	p.warnUnusedArgs()
	return p.plan, nil
}

// planner holds what parsing one Dockerfile needs. It lives for one Parse
// call; nothing in it is shared between builds.
type planner struct {
	ctx    context.Context
	req    Request
	images ImageSource
	plan   *Plan
	src    *source
	data   []byte

	lex      *shell.Lex
	global   *scope // platform args and meta ARGs (ARG before the first FROM)
	declared map[string]bool
	contexts map[string]namedContext

	ast      *parser.Result
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
	commands map[*Stage][]*command // per stage, ONBUILD triggers first
	replaced map[*Stage]bool       // stages a --build-context of their name replaces
}

func newPlanner(ctx context.Context, req Request, images ImageSource) (*planner, error) {
	if req.Context == "" {
		req.Context = "."
	}
	ctxDir, err := filepath.Abs(req.Context)
	if err != nil {
		return nil, fmt.Errorf("resolve build context %q: %w", req.Context, err)
	}
	name := req.Dockerfile
	path := req.Dockerfile
	if path == "" {
		name, path = "Dockerfile", filepath.Join(ctxDir, "Dockerfile")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("read Dockerfile %s: %w", path, ErrNotFound)
		}
		return nil, fmt.Errorf("read Dockerfile: %w", err)
	}
	platform, err := targetPlatform(req.Platform)
	if err != nil {
		return nil, err
	}
	epoch, err := epochFrom(req.BuildArgs)
	if err != nil {
		return nil, err
	}
	tree, err := LoadContext(ctxDir, path)
	if err != nil {
		return nil, err
	}
	p := &planner{
		ctx:      ctx,
		req:      req,
		images:   images,
		src:      newSource(name, data),
		data:     data,
		declared: map[string]bool{},
		contexts: map[string]namedContext{},
		commands: map[*Stage][]*command{},
		replaced: map[*Stage]bool{},
	}
	p.plan = &Plan{Dockerfile: path, Platform: platform, Epoch: epoch, Context: tree, src: p.src}
	for k, v := range req.BuildContexts {
		nc, err := parseBuildContext(v)
		if err != nil {
			return nil, err
		}
		p.contexts[contextKey(k)] = nc
	}
	return p, nil
}

// parse runs BuildKit's parser and instruction conversion.
func (p *planner) parse() error {
	if len(bytes.TrimSpace(p.data)) == 0 {
		return p.src.errorAt(Location{}, "", errors.New("the Dockerfile cannot be empty"))
	}
	if syntax, _, loc, ok := parser.DetectSyntax(p.data); ok {
		p.plan.Syntax = syntax
		if !isDockerfileSyntax(syntax) {
			p.warn(locationOf(loc), fmt.Sprintf("syntax %s is ignored: minibuild always uses its built-in Dockerfile frontend", syntax))
		}
	}
	ast, err := parser.Parse(bytes.NewReader(p.data))
	if err != nil {
		return p.src.fromParseError(err)
	}
	for _, w := range ast.Warnings {
		var loc Location
		if w.Location != nil {
			loc = locationOf([]parser.Range{*w.Location})
		}
		p.warn(loc, w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		p.warn(locationOf(loc), rule+": "+msg)
	}})
	stages, metaArgs, err := instructions.Parse(ast.AST, lint)
	if err != nil {
		return p.src.fromParseError(err)
	}
	if len(stages) == 0 {
		return p.src.errorAt(Location{}, "", errors.New("dockerfile contains no stages to build"))
	}
	p.ast, p.stages, p.metaArgs = ast, stages, metaArgs
	p.lex = shell.NewLex(ast.EscapeToken)
	return p.metaScope()
}

// isDockerfileSyntax accepts the official frontend's names
// (docker/dockerfile:1, docker.io/docker/dockerfile:1.7-labs, …), whose
// features the built-in frontend implements.
func isDockerfileSyntax(s string) bool {
	s = strings.TrimPrefix(s, "docker.io/")
	return s == "docker/dockerfile" || strings.HasPrefix(s, "docker/dockerfile:") || strings.HasPrefix(s, "docker/dockerfile@")
}

func (p *planner) warn(loc Location, msg string) {
	p.plan.Warnings = append(p.plan.Warnings, Warning{Location: loc, Message: msg})
}
