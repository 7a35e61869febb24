package builder

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"minibuild/cache"
)

// stepRun is one filesystem step of a build: what its key is made of, how
// the lookup went, and once executed, its layer.
type stepRun struct {
	step  *Step
	stage *stageRun
	seq   int // 1-based position among the build's filesystem steps (build log order)
	num   int // 1-based among the stage's steps as BuildKit counts them (FROM is 1)

	parent cache.Parent // the state the step runs on
	parts  cache.Parts
	key    v1.Hash // the record key; for COPY --link the layer key
	state  v1.Hash // the state after the step (= key, but for COPY --link)
	link   bool

	fetched []*Fetched // ADD URL sources downloaded while keying

	forced bool // rebuilt on request (--no-cache, --no-cache-filter)
	hit    bool
	rec    cache.Record

	layer  *chainLayer // nil: no layer (empty diff) or not known yet
	ran    bool        // executed successfully
	failed bool

	// COPY --link steps that missed run in a goroutine of their own.
	linkDone chan struct{}
	linkErr  error
}

// deriveKeys computes every filesystem step's key before anything runs
// (docs/cache.md §2): stage by stage, each step's parent is the state the
// previous one left, starting from the base image's manifest digest,
// scratch, or the result of the FROM stage. Only COPY/ADD inputs need I/O:
// a scan of the build context (stat cache), and ADD URLs without
// --checksum, which are downloaded now.
func (bd *build) deriveKeys(ctx context.Context) error {
	for _, s := range bd.plan.Order {
		st := &stageRun{stage: s, done: make(chan struct{})}
		if err := bd.stageBase(st); err != nil {
			return bd.plan.src.errorAt(s.Location, s.Original, err)
		}
		bd.stages[s] = st
		bd.order = append(bd.order, st)
		if err := bd.dirBase(ctx, st); err != nil {
			return err
		}
		parent := st.baseParent
		for _, step := range s.Steps {
			if !step.Layer() {
				continue
			}
			sr := &stepRun{step: step, stage: st, seq: len(bd.steps) + 1, num: len(st.steps) + 2}
			if err := bd.stepKey(ctx, sr, parent); err != nil {
				return bd.plan.Error(step, err)
			}
			st.steps = append(st.steps, sr)
			bd.steps = append(bd.steps, sr)
			bd.byStep[step] = sr
			parent = cache.StepParent(sr.state)
		}
		st.total = len(st.steps) + 1
		st.result = parent
	}
	bd.force()
	return nil
}

// stageBase sets what a stage starts from: its base chain and the parent
// of its first step.
func (bd *build) stageBase(st *stageRun) error {
	s := st.stage
	switch s.From.Kind {
	case FromScratch:
		st.baseParent = cache.Scratch
	case FromImage:
		img := s.From.Image
		layers, err := imageChain(img)
		if err != nil {
			return err
		}
		st.base = layers
		st.baseParent = cache.ImageParent(img.Digest, img.Name)
	case FromStage:
		st.from = bd.stages[s.From.Stage]
		st.baseParent = st.from.result
		if st.baseParent.Kind == cache.ParentStep {
			st.baseParent.Name = st.from.stage.DisplayName
		}
	case FromDir:
		// dirBase keys the directory's layer.
	}
	return nil
}

// dirBase keys the base layer of a stage FROM a --build-context
// directory: the directory's files (after its .dockerignore, owned by
// 0:0 as COPY from a context makes them) copied into an empty tree, like
// a COPY --link of "." to "/". It is a step of its own, FROM's, in build
// logs and progress.
func (bd *build) dirBase(ctx context.Context, st *stageRun) error {
	s := st.stage
	if s.From.Kind != FromDir {
		return nil
	}
	op := &CopyOp{From: CopyFrom{Kind: FromNamedDir, Ref: s.From.Ref, Dir: s.From.Dir}, Sources: []string{"."}, Dest: "/"}
	step := &Step{
		Stage: s, Location: s.Location, Original: s.Original, Display: "FROM " + s.From.Ref, Copy: op,
		History: v1.History{Created: v1.Time{Time: bd.plan.Epoch}, CreatedBy: "FROM " + s.From.Ref, Comment: historyComment},
	}
	step.keyInstruction(cache.Instruction{Keyword: "FROM", Flags: []cache.Flag{{Name: "build-context", Value: s.From.Ref}}}, cache.ObservesCopy)
	sr := &stepRun{step: step, stage: st, seq: len(bd.steps) + 1, num: 1}
	if err := bd.stepKey(ctx, sr, cache.Scratch); err != nil {
		return bd.plan.Error(step, err)
	}
	st.baseStep = sr
	st.baseParent = cache.StepParent(sr.state)
	bd.steps = append(bd.steps, sr)
	bd.byStep[step] = sr
	return nil
}

// imageChain is an image's layers as a chain.
func imageChain(img *BaseImage) ([]chainLayer, error) {
	ids := img.Config.RootFS.DiffIDs
	if len(img.Layers) != len(ids) {
		return nil, fmt.Errorf("image %s: %d layers but %d diff IDs", img.Name, len(img.Layers), len(ids))
	}
	out := make([]chainLayer, len(ids))
	for i := range ids {
		out[i] = chainLayer{desc: img.Layers[i], diffID: ids[i]}
	}
	return out, nil
}

// stepKey fills the key of one step running on parent.
func (bd *build) stepKey(ctx context.Context, sr *stepRun, parent cache.Parent) error {
	step := sr.step
	if err := checkRun(step.Run); err != nil {
		return err
	}
	env := step.Env
	scope := cache.Scope{Env: env.Config, Args: env.Args, Workdir: env.WorkingDir, User: env.User, Shell: env.Shell}
	parts := cache.Parts{
		Parent:      parent,
		Instruction: step.Instruction,
		Env:         scope.Observed(step.observes),
		Platform:    formatPlatform(step.Stage.Platform),
	}
	inputs, err := bd.stepInputs(ctx, sr)
	if err != nil {
		return err
	}
	parts.Inputs = inputs
	sr.parent = parent
	sr.link = step.Copy != nil && step.Copy.Link
	if sr.link {
		// The layer does not depend on what is below it (docs/cache.md
		// "COPY --link"); the state after it still does.
		parts.Parent = cache.Parent{Kind: cache.ParentNone}
		sr.key = parts.Key()
		sr.state = cache.LinkState(parent, sr.key)
	} else {
		sr.key = parts.Key()
		sr.state = sr.key
	}
	sr.parts = parts.Normalize()
	if w := bd.req.KeyMaterial; w != nil {
		fmt.Fprintf(w, "# step %d (%s:%s) %s\n", sr.seq, bd.plan.src.name, step.Location, oneLine(step.Original))
		if err := cache.WriteKeyMaterial(w, sr.parts, bd.contexts); err != nil {
			return err
		}
	}
	return nil
}

// checkRun refuses RUN options the sandbox does not provide yet.
func checkRun(op *RunOp) error {
	if op == nil {
		return nil
	}
	if len(op.Mounts) > 0 {
		return fmt.Errorf("RUN --mount: %w", ErrUnsupported)
	}
	if op.Security != instructions.SecuritySandbox {
		return fmt.Errorf("RUN --security=%s: %w", op.Security, ErrUnsupported)
	}
	switch effectiveNetwork(op.Network, "") {
	case "host", "none":
	default:
		return fmt.Errorf("RUN --network=%s: %w (want host or none)", op.Network, ErrUnsupported)
	}
	return nil
}

// stepInputs lists what a COPY/ADD reads besides its parent: the
// selected files of a build context (their listing digest), another
// stage's result, an image, downloaded URLs.
func (bd *build) stepInputs(ctx context.Context, sr *stepRun) ([]cache.Input, error) {
	op := sr.step.Copy
	if op == nil {
		return nil, nil
	}
	var inputs []cache.Input
	switch op.From.Kind {
	case FromContext, FromNamedDir:
		if !hasLocalSources(op) {
			break
		}
		in, err := bd.contextInput(ctx, op)
		if err != nil {
			return nil, err
		}
		inputs = append(inputs, in)
	case FromStageResult:
		from := bd.stages[op.From.Stage]
		inputs = append(inputs, cache.Input{Kind: cache.InputStage, Name: from.stage.DisplayName, Digest: from.result.State()})
	case FromImageRoot:
		in := cache.Input{Kind: cache.InputImage, Name: op.From.Ref, Digest: cache.ScratchState()}
		if op.From.Image != nil {
			in.Digest = op.From.Image.Digest
		}
		inputs = append(inputs, in)
	}
	urls, err := bd.urlInputs(ctx, sr)
	if err != nil {
		return nil, err
	}
	return append(inputs, urls...), nil
}

// sourceTree is where a COPY/ADD from a build context reads.
func (bd *build) sourceTree(op *CopyOp) (Tree, string, error) {
	if op.From.Kind == FromNamedDir {
		t, err := LoadContext(op.From.Dir, "")
		return t, op.From.Ref, err
	}
	return bd.plan.Context, "", nil
}

// contextInput is the listing digest of the files a COPY/ADD selects in
// its build context: the subtrees of its resolved sources.
func (bd *build) contextInput(ctx context.Context, op *CopyOp) (cache.Input, error) {
	tree, name, err := bd.sourceTree(op)
	if err != nil {
		return cache.Input{}, err
	}
	srcs, err := Sources(tree, op)
	if err != nil {
		return cache.Input{}, err
	}
	files, err := bd.contexts.files(ctx, tree)
	if err != nil {
		return cache.Input{}, err
	}
	roots := make([]string, 0, len(srcs))
	for _, s := range srcs {
		roots = append(roots, s.Path)
	}
	id, err := bd.contexts.put(cache.Subtrees(files, roots...), !bd.dry)
	if err != nil {
		return cache.Input{}, err
	}
	return cache.Input{Kind: cache.InputContext, Name: name, Digest: id}, nil
}

// urlInputs downloads the URL sources of an ADD that have no --checksum
// (their content is the input), and names the others by their checksum;
// the download is then verified against it when the step runs.
func (bd *build) urlInputs(ctx context.Context, sr *stepRun) ([]cache.Input, error) {
	op := sr.step.Copy
	var inputs []cache.Input
	for _, src := range op.Sources {
		if !op.Add || !isURL(src) {
			continue
		}
		if op.Checksum != "" {
			inputs = append(inputs, cache.Input{Kind: cache.InputURL, Name: src, Digest: hashOf(op.Checksum)})
			continue
		}
		f, err := bd.fetch(ctx, src, "")
		if err != nil {
			return nil, err
		}
		sr.fetched = append(sr.fetched, f)
		inputs = append(inputs, cache.Input{Kind: cache.InputURL, Name: src, Digest: hashOf(f.Digest)})
	}
	return inputs, nil
}

// force marks the steps that run whatever the cache holds: every step
// with --no-cache; the stages --no-cache-filter names; and, so that no
// result built on the old output survives, every later non-link step of
// a stage once one of its steps reads a forced stage (COPY --from, FROM).
func (bd *build) force() {
	filter := map[string]bool{}
	for _, f := range bd.req.NoCacheFilter {
		filter[strings.ToLower(f)] = true
	}
	for _, st := range bd.order {
		s := st.stage
		all := bd.req.NoCache || (s.Name != "" && filter[s.Name]) || filter[strconv.Itoa(s.Index)] ||
			(st.from != nil && st.from.forced)
		forcing := all
		if b := st.baseStep; b != nil && all {
			b.forced, st.forced = true, true
		}
		for _, sr := range st.steps {
			reads := bd.readsForced(sr)
			forcing = forcing || reads
			if forcing && (!sr.link || all || reads) {
				sr.forced, st.forced = true, true
			}
		}
	}
}

func (bd *build) readsForced(sr *stepRun) bool {
	op := sr.step.Copy
	return op != nil && op.From.Kind == FromStageResult && bd.stages[op.From.Stage].forced
}

// lookup asks the cache for every step that may be reused. A record
// whose layer blob is gone (pruned, and not known in a registry) is a
// miss.
func (bd *build) lookup() error {
	for _, sr := range bd.steps {
		if sr.forced {
			continue
		}
		rec, found, err := bd.b.cache.Get(sr.key)
		if err != nil {
			return err
		}
		if !found {
			continue
		}
		// A layer known only remotely (an imported cache's, a lazy
		// base's) counts: it is fetched if something reads it.
		if l := layerOf(rec.Layer); l != nil && !bd.b.layerAvailable(l.desc.Digest) {
			bd.b.log.Info("cache record names a missing layer; rebuilding", "key", sr.key.String(), "layer", l.desc.Digest.String())
			continue
		}
		sr.hit, sr.rec = true, rec
	}
	return nil
}
