package main

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"

	"minibuild/builder"
	"minibuild/cache"
)

// engine is a Builder on the store at --root and its step cache.
type engine struct {
	*builder.Builder
	close func() error
}

// openEngine opens the store at --root (with the registries named
// insecure) and the step cache under it.
func openEngine(a *app, insecure []string) (*engine, error) {
	s, err := openRegistryStore(a, insecure)
	if err != nil {
		return nil, err
	}
	log := slog.New(&stderrHandler{w: a.stderr})
	c, err := cache.Open(filepath.Join(s.Root(), "cache"), cache.WithLogger(log))
	if err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return &engine{Builder: builder.New(s, c, builder.WithLogger(log)), close: s.Close}, nil
}

// buildImage runs one build.
func buildImage(ctx context.Context, a *app, insecure []string, req builder.Request) (res *builder.Result, err error) {
	e, err := openEngine(a, insecure)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, e.close()) }()
	return e.Build(ctx, req)
}

// explainBuild is a dry run of req: which steps would hit the cache.
func explainBuild(ctx context.Context, a *app, req builder.Request) (steps []explainStep, err error) {
	e, err := openEngine(a, nil)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, e.close()) }()
	res, err := e.Explain(ctx, req)
	if err != nil {
		return nil, err
	}
	return stepsFromResult(res), nil
}
