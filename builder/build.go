package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"minibuild/cache"
	"minibuild/exec"
	"minibuild/layer"
	"minibuild/oci"
)

// Build runs req: it plans the Dockerfile, derives every filesystem
// step's cache key, looks them up, executes what missed (stages and COPY
// --link steps concurrently, at most Request.Jobs at a time), writes the
// image into the store, tags it and writes the requested outputs.
//
// Errors about the Dockerfile, and failures of a step, are
// *[DockerfileError]; a RUN that exited non-zero also unwraps to
// *exec.ExitError. A failed build leaves no blob, snapshot or record of
// the step that failed (steps that finished before it keep theirs) and
// no mount, process or temp dir. The Result is returned with a failure
// too, when there is one, holding the steps that ran.
func (b *Builder) Build(ctx context.Context, req Request) (*Result, error) {
	bd, err := b.prepare(ctx, req, false)
	if err != nil {
		return nil, err
	}
	defer bd.close()
	err = bd.execute(ctx)
	bd.saveLog()
	res := bd.result()
	if err != nil {
		return res, err
	}
	if err := bd.export(ctx, res); err != nil {
		return res, err
	}
	if err := bd.writeOutputs(ctx, res); err != nil {
		return res, err
	}
	if err := bd.push(ctx, res); err != nil {
		return res, err
	}
	if err := bd.exportCaches(ctx); err != nil {
		return res, err
	}
	return res, nil
}

// build is the state of one Build or Explain call. Nothing in it outlives
// the call.
type build struct {
	b      *Builder
	req    Request
	ev     *emitter
	images *storeImages
	plan   *Plan
	comp   layer.Compression
	jobs   int
	dry    bool // Explain: no execution, no writes

	stages map[*Stage]*stageRun
	order  []*stageRun // plan.Order
	steps  []*stepRun  // filesystem steps in build order (build log numbering)
	byStep map[*Step]*stepRun

	contexts *contextScans // listings of build contexts, by directory
	prev     *cache.Build  // the last build of this Dockerfile, if any

	mu       sync.Mutex
	finished []StepResult  // in the order steps finished
	runs     []*stepRun    // the stepRun of each finished entry (nil: config-only)
	cleanups []string      // temp dirs to remove when the build ends
	saving   chan struct{} // closed when the stat caches are written back

	runner *exec.Runner // the RUN steps' sandboxes, one init started ahead
}

// close waits for the stat caches to be saved and removes the build's
// temp dirs (downloads of ADD).
func (bd *build) close() {
	bd.runner.Close()
	if bd.saving != nil {
		<-bd.saving
	}
	bd.mu.Lock()
	dirs := bd.cleanups
	bd.cleanups = nil
	bd.mu.Unlock()
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			bd.b.log.Warn("remove temp dir", "dir", d, "err", err)
		}
	}
}

func (bd *build) addCleanup(dir string) {
	bd.mu.Lock()
	defer bd.mu.Unlock()
	bd.cleanups = append(bd.cleanups, dir)
}

// prepare is everything before execution: the request checked, the
// Dockerfile planned, every key derived and looked up, lint warnings
// given. It does no filesystem work beyond reading the Dockerfile, the
// build contexts and the cache.
func (b *Builder) prepare(ctx context.Context, req Request, dry bool) (_ *build, err error) {
	bd := &build{b: b, req: req, ev: newEmitter(req.Progress), dry: dry,
		stages: map[*Stage]*stageRun{}, byStep: map[*Step]*stepRun{}, runner: exec.NewRunner()}
	defer func() {
		if err != nil {
			bd.close() // downloads of ADD made while keying
		}
	}()
	if err := bd.checkRequest(); err != nil {
		return nil, err
	}
	policy, err := oci.ParsePullPolicy(string(req.Pull))
	if err != nil {
		return nil, err
	}
	if dry && policy == oci.PullMissing {
		policy = oci.PullNever // a dry run does not download images
	}
	bd.images = newStoreImages(b.store, policy, bd.ev)
	v := bd.ev.internal("[internal] load build definition from " + dockerfileName(req))
	bd.plan, err = Parse(ctx, req, bd.images)
	v.finish(err)
	if err != nil {
		return nil, err
	}
	bd.contexts = newContextScans(b, bd.ev)
	if err := bd.deriveKeys(ctx); err != nil {
		return nil, err
	}
	// Writing back a stat cache that learned something costs tens of ms
	// for a large context; it overlaps with the rest of the build.
	bd.saving = make(chan struct{})
	go func() {
		defer close(bd.saving)
		bd.contexts.save()
	}()
	bd.importCaches(ctx)
	if err := bd.lookup(); err != nil {
		return nil, err
	}
	bd.lint()
	for _, w := range bd.plan.Warnings {
		bd.ev.warn(w)
	}
	bd.loadPrevious()
	return bd, nil
}

// checkRequest refuses requests the engine cannot honour before any work:
// unknown compressions, networks, outputs and shared caches.
func (bd *build) checkRequest() error {
	comp, err := layer.ParseCompression(cmpOr(bd.req.Compression, string(layer.Gzip)))
	if err != nil {
		return err
	}
	bd.comp = comp
	switch bd.req.Network {
	case "", "default", "host", "none":
	default:
		return fmt.Errorf("network %q: want host or none: %w", bd.req.Network, ErrUnsupported)
	}
	bd.jobs = bd.req.Jobs
	if bd.jobs <= 0 {
		bd.jobs = runtime.NumCPU()
	}
	if err := checkOutputs(bd.req); err != nil {
		return err
	}
	return checkCacheSpecs(bd.req)
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func dockerfileName(req Request) string {
	if req.Dockerfile == "" {
		return "Dockerfile"
	}
	return req.Dockerfile
}

// execute runs the stage graph: one goroutine per stage, waiting only for
// the stages whose filesystem it needs, plus one per COPY --link step
// that missed. At most jobs steps do work at a time (cache hits need no
// slot). The first failure cancels the rest; its error is the one
// returned.
func (bd *build) execute(ctx context.Context) error {
	if err := bd.fetchLayers(ctx); err != nil {
		return err
	}
	sched := newScheduler(ctx, bd.jobs)
	for _, sr := range bd.order {
		sched.spawn(func(ctx context.Context) error { return bd.runStage(ctx, sched, sr) })
	}
	return sched.wait()
}

// result is the Result of the build so far, with the reason of every
// step that missed.
func (bd *build) result() *Result {
	bd.mu.Lock()
	steps, runs := slices.Clone(bd.finished), slices.Clone(bd.runs)
	bd.mu.Unlock()
	bd.explainSteps(steps, runs)
	return &Result{Steps: steps, Warnings: bd.plan.Warnings}
}

// finish records how a step ended, for Result.Steps; sr is nil for a
// step that only changes the config.
func (bd *build) finish(sr *stepRun, r StepResult) {
	bd.mu.Lock()
	defer bd.mu.Unlock()
	bd.finished = append(bd.finished, r)
	bd.runs = append(bd.runs, sr)
}

// stageName is the prefix of a stage's vertex names: its name, or
// "stage-N" in a multi-stage build, or nothing (BuildKit's "[2/5]").
func (bd *build) stageName(s *Stage) string {
	if s.Name == "" && len(bd.plan.Stages) == 1 {
		return ""
	}
	return s.DisplayName
}

// vertexName is "[builder 2/4] COPY a/ ./".
func (bd *build) vertexName(s *Stage, n, total int, text string) string {
	prefix := bd.stageName(s)
	if prefix != "" {
		prefix += " "
	}
	return "[" + prefix + strconv.Itoa(n) + "/" + strconv.Itoa(total) + "] " + text
}

// stepError ties err to the step that failed: a *DockerfileError with
// the step's number and, for a RUN, its exit code and last output lines.
func (bd *build) stepError(sr *stepRun, err error, out *runOutput) error {
	e := bd.plan.Error(sr.step, err)
	if de, ok := errors.AsType[*DockerfileError](e); ok {
		de.Step, de.Steps = sr.num, sr.stage.total
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			de.ExitCode = ee.Code
		}
		if out != nil {
			de.Output = out.tail()
		}
	}
	return e
}

// stepResult is the Result entry of a filesystem step.
func (bd *build) stepResult(sr *stepRun, v *vertex, cached bool, dur time.Duration) StepResult {
	r := StepResult{
		Name:     bd.vertexName(sr.stage.stage, sr.num, sr.stage.total, sr.step.Display),
		Stage:    sr.stage.stage.DisplayName,
		Step:     sr.num,
		Steps:    sr.stage.total,
		Location: sr.step.Location,
		Cached:   cached,
		Key:      sr.key,
		Duration: dur,
	}
	if v != nil {
		r.Vertex = v.number()
	}
	if l := sr.layer; l != nil {
		d := l.desc
		r.Layer = &d
	}
	return r
}

// configStepResult is the Result entry of a step that only changes the
// image config: always "cached", no vertex, no layer.
func configStepResult(s *Step) StepResult {
	return StepResult{Name: s.Display, Stage: s.Stage.DisplayName, Location: s.Location, Cached: true}
}

// hashOf is a v1.Hash for a "sha256:<hex>" string known to be valid.
func hashOf(s string) v1.Hash {
	h, _ := v1.NewHash(s)
	return h
}
