package builder

import (
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"minibuild/cache"
)

// Result is what a build produced.
type Result struct {
	// Manifest is the image's manifest descriptor in the store.
	Manifest v1.Descriptor
	// Config is the digest of the image config (the image ID).
	Config v1.Hash
	// Tags are the normalized names the image was tagged with.
	Tags []string
	// Steps reports every step of the stages that were built, in the
	// order they finished.
	Steps    []StepResult
	Warnings []Warning
}

// StepResult is how one step went.
type StepResult struct {
	Vertex      int
	Name        string // display name, as in the progress output
	Stage       string
	Step, Steps int
	Location    Location
	// Cached is true when the step's result came from the cache (or the
	// step changes only the config).
	Cached   bool
	Key      v1.Hash
	Duration time.Duration
	// Layer is the layer the step made or reused; nil when it made none.
	Layer *v1.Descriptor
	// Reason says why the step missed the cache compared with the last
	// build of this Dockerfile; zero when Cached.
	Reason cache.Reason
}
