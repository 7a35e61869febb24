package builder

import (
	"context"
	"slices"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"minibuild/cache"
)

// scheduler runs a build's goroutines: every one has a waiter (the
// errgroup), the first error cancels the others' context, and work (not
// waiting) is bounded by a semaphore of Request.Jobs slots.
type scheduler struct {
	g      *errgroup.Group
	ctx    context.Context
	cancel context.CancelFunc
	sem    *semaphore.Weighted

	mu    sync.Mutex
	first error // the first step failure: the build's error
}

func newScheduler(ctx context.Context, jobs int) *scheduler {
	g, gctx := errgroup.WithContext(ctx)
	ctx, cancel := context.WithCancel(gctx)
	return &scheduler{g: g, ctx: ctx, cancel: cancel, sem: semaphore.NewWeighted(int64(jobs))}
}

// fail claims err as the build's failure and cancels the other
// goroutines at once, unless the build is already failing or cancelled;
// it reports whether err was claimed. Deciding under one lock, before the
// failing step is reported, is what makes exactly one step of those
// failing at the same moment the failure, and the others cancelled.
func (s *scheduler) fail(err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.first != nil || s.ctx.Err() != nil {
		return false
	}
	s.first = err
	s.cancel()
	return true
}

// spawn starts fn in the group. It takes no slot: fn may wait for other
// goroutines; it calls work for the part that uses the machine.
func (s *scheduler) spawn(fn func(ctx context.Context) error) {
	s.g.Go(func() error { return fn(s.ctx) })
}

// work runs fn holding one slot.
func (s *scheduler) work(ctx context.Context, fn func() error) error {
	if err := s.sem.Acquire(ctx, 1); err != nil {
		return err
	}
	defer s.sem.Release(1)
	return fn()
}

// wait waits for every goroutine and returns the claimed failure, or
// else the first error one returned (a cancellation by the caller).
func (s *scheduler) wait() error {
	err := s.g.Wait()
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.first != nil {
		return s.first
	}
	return err
}

// chainLayer is one layer of a filesystem chain: the blob the image
// manifest names and the diff ID its snapshot is kept under.
type chainLayer struct {
	desc   v1.Descriptor
	diffID v1.Hash
}

// layerOf is the chain layer a cache record names, nil for an empty one.
func layerOf(r cache.LayerRef) *chainLayer {
	if r.Digest == (v1.Hash{}) {
		return nil
	}
	return &chainLayer{
		desc:   v1.Descriptor{MediaType: types.MediaType(r.MediaType), Digest: r.Digest, Size: r.Size},
		diffID: r.DiffID,
	}
}

// stageRun is one stage of the build being executed.
type stageRun struct {
	stage      *Stage
	from       *stageRun    // FROM <stage>
	base       []chainLayer // FROM <image>: its layers
	baseParent cache.Parent // the state the first step runs on
	result     cache.Parent // the state after the last step
	total      int          // steps as BuildKit counts them: FROM and filesystem steps
	steps      []*stepRun
	baseStep   *stepRun // FROM a --build-context directory: its layer
	forced     bool     // a step of this stage runs on request (--no-cache…)

	done  chan struct{} // closed when chain is final
	chain []chainLayer
}

// wait returns the stage's final chain once it is built.
func (sr *stageRun) wait(ctx context.Context) ([]chainLayer, error) {
	select {
	case <-sr.done:
		return sr.chain, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// baseChain is the chain the stage starts from (waiting for a FROM
// stage), capped so that appending never writes into another stage's.
func (sr *stageRun) baseChain(ctx context.Context) ([]chainLayer, error) {
	if sr.from == nil {
		return slices.Clip(sr.base), nil
	}
	chain, err := sr.from.wait(ctx)
	return slices.Clip(chain), err
}

// runStage executes one stage: its COPY --link steps that missed start at
// once, in parallel; the other steps run in order, each on the chain the
// previous ones left.
func (bd *build) runStage(ctx context.Context, sched *scheduler, sr *stageRun) error {
	bd.startLinks(sched, sr) // they need no base: not even the FROM stage's
	chain, err := sr.baseChain(ctx)
	if err != nil {
		return err
	}
	s := sr.stage
	if sr.baseStep != nil {
		l, err := bd.runStep(ctx, sched, sr.baseStep, nil)
		if err != nil {
			return err
		}
		if l != nil {
			chain = []chainLayer{*l}
		}
	} else {
		v := bd.ev.begin(Event{Name: bd.vertexName(s, 1, sr.total, "FROM "+fromText(s)), Stage: s.DisplayName, Step: 1, Steps: sr.total, Location: s.Location})
		v.done()
	}
	for _, step := range s.Steps {
		if !step.Layer() {
			bd.finish(nil, configStepResult(step))
			continue
		}
		l, err := bd.runStep(ctx, sched, bd.byStep[step], chain)
		if err != nil {
			return err
		}
		if l != nil {
			chain = append(chain, *l)
		}
	}
	sr.chain = chain
	close(sr.done)
	return nil
}

// fromText names a stage's base in its FROM vertex.
func fromText(s *Stage) string {
	if s.From.Kind == FromImage && s.From.Image != nil {
		return s.From.Image.Name + "@" + s.From.Image.Digest.String()
	}
	return s.From.Ref
}

// begin starts the vertex of a filesystem step.
func (bd *build) begin(sr *stepRun) *vertex {
	s := sr.stage.stage
	return bd.ev.begin(Event{
		Name: bd.vertexName(s, sr.num, sr.stage.total, sr.step.Display), Stage: s.DisplayName,
		Step: sr.num, Steps: sr.stage.total, Location: sr.step.Location, Key: sr.key,
	})
}

// runStep gives the layer of one filesystem step (nil when it made
// none): the cached one, or the one it makes now.
func (bd *build) runStep(ctx context.Context, sched *scheduler, sr *stepRun, chain []chainLayer) (*chainLayer, error) {
	if sr.link {
		return bd.linkResult(ctx, sr)
	}
	if sr.hit {
		v := bd.begin(sr)
		sr.layer = layerOf(sr.rec.Layer)
		v.cached()
		bd.finish(sr, bd.stepResult(sr, v, true, v.elapsed()))
		return sr.layer, nil
	}
	// Waiting for the stage a COPY --from reads, or for a job slot, is
	// not the step's work: its vertex starts once it has both, so that
	// progress shows as running only what runs.
	src, err := bd.copySourceChain(ctx, sr)
	if err != nil {
		return nil, err
	}
	var v *vertex
	var out *runOutput
	err = sched.work(ctx, func() (err error) {
		v = bd.begin(sr)
		if sr.step.Run != nil {
			out = &runOutput{v: v}
		}
		sr.layer, err = bd.exec(ctx, sr, chain, src, v, out)
		return err
	})
	if v == nil {
		return nil, err // cancelled while waiting for a slot: it never started
	}
	return bd.ended(sched, sr, v, out, err)
}

// ended reports a step that did work. Only the build's first failure is
// reported as one: a step that fails once the build is cancelled
// (another step failed first, or the caller gave up) did not fail by
// itself, and its vertex ends with context.Canceled.
func (bd *build) ended(sched *scheduler, sr *stepRun, v *vertex, out *runOutput, err error) (*chainLayer, error) {
	if err != nil {
		err = bd.stepError(sr, err, out)
		if sched.fail(err) {
			v.fail(err)
		} else {
			v.fail(context.Canceled)
		}
		sr.failed = true
		bd.finish(sr, bd.stepResult(sr, v, false, v.elapsed()))
		return nil, err
	}
	sr.ran = true
	v.done()
	bd.finish(sr, bd.stepResult(sr, v, false, v.elapsed()))
	return sr.layer, nil
}

// exec does the work of a step that missed the cache.
func (bd *build) exec(ctx context.Context, sr *stepRun, chain, src []chainLayer, v *vertex, out *runOutput) (*chainLayer, error) {
	switch {
	case sr.step.Run != nil:
		return bd.execRun(ctx, sr, chain, v, out)
	case sr.step.Copy != nil:
		return bd.execCopy(ctx, sr, chain, src, v)
	}
	return bd.execWorkdir(ctx, sr, chain, v)
}

// startLinks starts a goroutine for every COPY --link step of the stage
// that missed: a link layer needs nothing below it, so it is built while
// the steps before it run, and next to the other link steps.
func (bd *build) startLinks(sched *scheduler, st *stageRun) {
	for _, sr := range st.steps {
		if !sr.link {
			continue
		}
		sr.linkDone = make(chan struct{})
		if sr.hit {
			sr.layer = layerOf(sr.rec.Layer)
			close(sr.linkDone)
			continue
		}
		sched.spawn(func(ctx context.Context) error {
			defer close(sr.linkDone)
			sr.linkErr = bd.runLink(ctx, sched, sr)
			return sr.linkErr
		})
	}
}

// runLink builds one COPY --link layer, once its --from source (if any)
// is built.
func (bd *build) runLink(ctx context.Context, sched *scheduler, sr *stepRun) error {
	src, err := bd.copySourceChain(ctx, sr)
	if err != nil {
		return err
	}
	return sched.work(ctx, func() error {
		v := bd.begin(sr)
		l, err := bd.execLink(ctx, sr, src, v)
		sr.layer = l
		_, err = bd.ended(sched, sr, v, nil, err)
		return err
	})
}

// linkResult waits for a COPY --link step's layer. A hit is reported
// here, in step order.
func (bd *build) linkResult(ctx context.Context, sr *stepRun) (*chainLayer, error) {
	select {
	case <-sr.linkDone:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if sr.linkErr != nil {
		return nil, sr.linkErr
	}
	if sr.hit {
		v := bd.begin(sr)
		v.cached()
		bd.finish(sr, bd.stepResult(sr, v, true, 0))
	}
	return sr.layer, nil
}
