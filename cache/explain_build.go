package cache

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// StepReport is one step of a build as `minibuild explain` shows it.
type StepReport struct {
	Step StepRef `json:"step"`
	Key  v1.Hash `json:"key,omitzero"`
	// Reason says why the step was rebuilt; nil for a cache hit.
	Reason *Reason `json:"reason,omitempty"`
}

// String is "step 4/9 COPY src/ /app/src: input changed: …", or
// "step 2/9 RUN make: cached".
func (r StepReport) String() string {
	head := fmt.Sprintf("step %d/%d %s", r.Step.Index, r.Step.Total, r.Step.Text)
	if r.Reason == nil {
		return head + ": cached"
	}
	return head + ": " + r.Reason.String()
}

// ExplainBuild reports every step of cur, with a [Reason] for each one
// that missed, found by comparing with the matching step of prev (nil: no
// previous build of this Dockerfile). The matching step is the one in the
// same stage with the same key (then the record is missing), else with
// the same parent and instruction, else the same parent, else at the same
// position within the stage. files loads listings to name changed files
// (nil: files are not named).
func ExplainBuild(prev *Build, cur Build, files ListingSource) []StepReport {
	producers := map[v1.Hash]StepRef{}
	for _, st := range cur.Steps {
		if _, ok := producers[st.StateKey()]; !ok {
			producers[st.StateKey()] = stepRef(st)
		}
	}
	opts := ExplainOptions{
		Files: files,
		Producer: func(state v1.Hash) (StepRef, bool) {
			ref, ok := producers[state]
			return ref, ok
		},
	}
	ordinal := map[string]int{}
	out := make([]StepReport, 0, len(cur.Steps))
	for _, st := range cur.Steps {
		n := ordinal[st.Stage]
		ordinal[st.Stage]++
		rep := StepReport{Step: stepRef(st), Key: st.Key}
		if !st.Cached {
			r := explainStep(prev, st, n, opts)
			rep.Reason = &r
		}
		out = append(out, rep)
	}
	return out
}

func stepRef(st StepLog) StepRef {
	return StepRef{Index: st.Index, Total: st.Total, Stage: st.Stage, Line: st.Line, Text: st.Text, Cached: st.Cached}
}

// explainStep explains one missed step, the n-th (0-based) of its stage.
func explainStep(prev *Build, st StepLog, n int, opts ExplainOptions) Reason {
	switch {
	case st.Key == (v1.Hash{}):
		return Reason{Kind: ReasonNotRun}
	case st.NoCache:
		return Reason{Kind: ReasonNoCache}
	case prev == nil:
		return Reason{Kind: ReasonNoPrevious}
	}
	match, ok := matchStep(prev, st, n)
	if !ok {
		return Reason{Kind: ReasonNewStep}
	}
	if match.Key == st.Key {
		return Reason{Kind: ReasonRecordMissing}
	}
	return Explain(match.Parts, st.Parts, opts)
}

// matchStep finds the step of prev that st is the new version of.
func matchStep(prev *Build, st StepLog, n int) (StepLog, bool) {
	var stage []StepLog
	for _, p := range prev.Steps {
		if p.Stage == st.Stage && p.Key != (v1.Hash{}) { // skip steps it did not reach
			stage = append(stage, p)
		}
	}
	tests := []func(StepLog) bool{
		func(p StepLog) bool { return p.Key == st.Key },
		func(p StepLog) bool {
			return sameParent(p.Parts.Parent, st.Parts.Parent) && p.Parts.Instruction == st.Parts.Instruction
		},
		func(p StepLog) bool { return sameParent(p.Parts.Parent, st.Parts.Parent) },
	}
	for _, test := range tests {
		for _, p := range stage {
			if test(p) {
				return p, true
			}
		}
	}
	if n < len(stage) {
		return stage[n], true
	}
	return StepLog{}, false
}
