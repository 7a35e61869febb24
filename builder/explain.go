package builder

import (
	"context"
	"path/filepath"
	"strconv"

	"minibuild/cache"
)

// Explain is a dry run of req for `minibuild explain`: it plans the
// Dockerfile, derives every key and looks each up, and reports per step
// whether it would be taken from the cache and, if not, why (compared
// with the last build of this Dockerfile). It runs nothing, mounts
// nothing, pulls nothing (a base image must be in the store) and writes
// nothing but the context's stat cache; ADD URLs without --checksum are
// downloaded, since their content is their key.
func (b *Builder) Explain(ctx context.Context, req Request) (*Result, error) {
	bd, err := b.prepare(ctx, req, true)
	if err != nil {
		return nil, err
	}
	defer bd.close()
	var steps []StepResult
	var runs []*stepRun
	for _, st := range bd.order {
		if sr := st.baseStep; sr != nil {
			steps, runs = append(steps, bd.stepResult(sr, nil, sr.hit, 0)), append(runs, sr)
		}
		for _, step := range st.stage.Steps {
			if !step.Layer() {
				steps, runs = append(steps, configStepResult(step)), append(runs, nil)
				continue
			}
			sr := bd.byStep[step]
			if sr.hit {
				sr.layer = layerOf(sr.rec.Layer)
			}
			steps, runs = append(steps, bd.stepResult(sr, nil, sr.hit, 0)), append(runs, sr)
		}
	}
	bd.explainSteps(steps, runs)
	return &Result{Steps: steps, Warnings: bd.plan.Warnings}, nil
}

// explainSteps fills the Reason of every step that missed, comparing
// this build's log with the previous one (cache.ExplainBuild).
func (bd *build) explainSteps(steps []StepResult, runs []*stepRun) {
	missed := false
	for i, sr := range runs {
		missed = missed || (sr != nil && !steps[i].Cached)
	}
	if !missed {
		return
	}
	reports := cache.ExplainBuild(bd.prev, bd.buildLog(), bd.contexts)
	for i, sr := range runs {
		if sr == nil || steps[i].Cached || sr.seq > len(reports) {
			continue
		}
		if r := reports[sr.seq-1].Reason; r != nil {
			steps[i].Reason = *r
		}
	}
}

// buildID names this build for the cache's build logs.
func (bd *build) buildID() (string, string, string) {
	df, err := filepath.Abs(bd.plan.Dockerfile)
	if err != nil {
		df = bd.plan.Dockerfile
	}
	return df, bd.plan.Context.Dir, bd.req.Target
}

// loadPrevious reads the last build log of this Dockerfile, context and
// target, for explanations.
func (bd *build) loadPrevious() {
	df, dir, target := bd.buildID()
	prev, found, err := bd.b.cache.LastBuild(cache.BuildID(df, dir, target))
	if err != nil {
		bd.b.log.Warn("read the previous build log", "err", err)
		return
	}
	if found {
		bd.prev = &prev
	}
}

// buildLog is this build as the cache keeps it for the next explain:
// every filesystem step with its key and parts, hit or not, numbered as
// progress output numbers it ("step 3/4" of its stage, FROM being 1). After a
// failure the steps that did not run are in it too, with the keys they
// would have had ("record what was computed"): the next build can then
// say what changed since.
func (bd *build) buildLog() cache.Build {
	df, dir, target := bd.buildID()
	b := cache.Build{Dockerfile: df, Context: dir, Target: target, Steps: make([]cache.StepLog, 0, len(bd.steps))}
	for _, sr := range bd.steps {
		s := sr.stage.stage
		stage := s.Name
		if stage == "" {
			stage = strconv.Itoa(s.Index)
		}
		sl := cache.StepLog{
			Index: sr.num, Total: sr.stage.total, Stage: stage, Line: sr.step.Location.Start,
			Text: sr.step.Original, Key: sr.key, Parts: sr.parts, Cached: sr.hit, NoCache: sr.forced,
		}
		if sr.link {
			sl.State = sr.state
		}
		b.Steps = append(b.Steps, sl)
	}
	return b
}

// saveLog stores the build log, unless it says exactly what the previous
// one says (a repeated no-op build writes nothing).
func (bd *build) saveLog() {
	cur := bd.buildLog()
	if bd.prev != nil && sameSteps(bd.prev.Steps, cur.Steps) {
		return
	}
	if err := bd.b.cache.PutBuild(cur); err != nil {
		bd.b.log.Warn("save the build log", "err", err)
	}
}

func sameSteps(a, b []cache.StepLog) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Key != y.Key || x.State != y.State || x.Cached != y.Cached || x.NoCache != y.NoCache ||
			x.Index != y.Index || x.Total != y.Total || x.Stage != y.Stage || x.Line != y.Line || x.Text != y.Text {
			return false
		}
	}
	return true
}
