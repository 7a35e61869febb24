package main

import (
	"context"
	"errors"

	"minibuild/builder"
)

// errNoEngine: the step loop is not part of this build of minibuild yet.
var errNoEngine = errors.New("the build engine is not available yet")

// buildImage runs one build on the store at --root.
func buildImage(ctx context.Context, a *app, req builder.Request) (*builder.Result, error) {
	return nil, errNoEngine
}

// explainBuild is a dry run of req: which steps would hit the cache.
func explainBuild(ctx context.Context, a *app, req builder.Request) ([]explainStep, error) {
	return nil, errNoEngine
}
