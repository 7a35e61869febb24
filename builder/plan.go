package builder

import (
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Plan is a Dockerfile turned into data: every stage with its base, its
// dependencies and its steps, all ARG/ENV expansion done. Nothing in a Plan
// touches a filesystem; executing it is the step loop's job.
type Plan struct {
	// Dockerfile is the path the Dockerfile was read from.
	Dockerfile string
	// Syntax is the "# syntax=" directive, if any. minibuild always uses
	// its own frontend; the value is informational.
	Syntax   string
	Platform v1.Platform
	// Epoch is SOURCE_DATE_EPOCH or [DefaultEpoch]: every history entry's
	// `created`, the config's `created`, and the mtime clamp.
	Epoch time.Time
	// Context is the main build context (COPY and ADD without --from).
	Context Tree
	// Stages are all stages in Dockerfile order (Stage.Index).
	Stages []*Stage
	// Target is the stage the build produces.
	Target *Stage `json:"-"`
	// Order lists the stages Target needs, each after everything it
	// depends on, Target last. Stages not in Order are not built.
	Order []*Stage `json:"-"`
	// Warnings are non-fatal findings (unused build args, lint rules).
	Warnings []Warning

	src *source
}

// Warning is a non-fatal finding about the Dockerfile.
type Warning struct {
	Location Location // zero when not tied to a line
	Message  string
}

// BaseKind says what a stage starts from.
type BaseKind int

// Base kinds.
const (
	// FromScratch is the empty filesystem (FROM scratch).
	FromScratch BaseKind = iota
	// FromStage is an earlier stage's result (FROM <stage>).
	FromStage
	// FromImage is an image resolved by the [ImageSource] (FROM <image>,
	// or a --build-context of an image form).
	FromImage
	// FromDir is a local directory given with --build-context; the
	// directory is the root filesystem and the config starts empty.
	FromDir
)

// Base is the starting point of a stage, or the source of COPY --from.
type Base struct {
	Kind  BaseKind
	Ref   string     // the name after ARG expansion, as written
	Stage *Stage     `json:"-"` // FromStage
	Image *BaseImage // FromImage
	Dir   string     // FromDir: absolute directory
}

// Stage is one FROM section of the Dockerfile.
type Stage struct {
	Index int
	// Name is the lowercased `AS` name, or "".
	Name string
	// DisplayName is Name or "stage-<Index>" for unnamed stages.
	DisplayName string
	Location    Location
	Original    string // the FROM instruction as written
	From        Base
	// Platform is FROM --platform after expansion, or the target
	// platform.
	Platform v1.Platform
	// Deps are the stages this one needs first: its base stage and every
	// COPY --from stage, in order of first use.
	Deps []*Stage `json:"-"`
	// Steps are the stage's instructions (ONBUILD triggers of the base
	// first), ready to execute.
	Steps []*Step
	// Config is the image config after the last step: deep-copied from
	// the base, with config changes and history entries of every step.
	// RootFS.DiffIDs still lists only the base's layers; the step loop
	// appends one per step that makes a layer.
	Config *v1.ConfigFile
	// BaseName and BaseDigest describe the image the stage chain starts
	// from, for the org.opencontainers.image.base.{name,digest}
	// annotations; empty for scratch and directory bases.
	BaseName   string
	BaseDigest v1.Hash
}

// Error returns err tied to step's location in the Dockerfile, as a
// *[DockerfileError]. The step loop uses it for failures while executing.
func (p *Plan) Error(step *Step, err error) error {
	if err == nil {
		return nil
	}
	e := p.src.errorAt(step.Location, step.Original, err)
	if de, ok := e.(*DockerfileError); ok && de.Stage == "" {
		de.Stage = step.Stage.DisplayName
	}
	return e
}
