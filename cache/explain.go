package cache

import (
	"cmp"
	"maps"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ReasonKind names the key part that made a step miss.
type ReasonKind string

// Reason kinds, in the order [Explain] checks the parts.
const (
	ReasonNoPrevious  ReasonKind = "no-previous-build" // nothing to compare with
	ReasonNewStep     ReasonKind = "new-step"          // no matching step in the previous build
	ReasonNoCache     ReasonKind = "no-cache"          // rebuilt on request
	ReasonVersion     ReasonKind = "version"           // key schema changed
	ReasonPlatform    ReasonKind = "platform"
	ReasonBase        ReasonKind = "base"   // the base image is another digest
	ReasonParent      ReasonKind = "parent" // the state below changed (an earlier step was rebuilt)
	ReasonInstruction ReasonKind = "instruction"
	ReasonEnv         ReasonKind = "env"
	ReasonInput       ReasonKind = "input"
	// ReasonRecordMissing: the key is the previous build's, but its
	// record is gone (pruned) or was never written (that build failed).
	ReasonRecordMissing ReasonKind = "record-missing"
	// ReasonNotRun: the build stopped before this step (it has no key).
	ReasonNotRun ReasonKind = "not-run"
)

// Reason says why a step missed: the first key part that differs from
// the matching step of the previous build, with details for that part,
// and which later parts differ too. [Reason.String] words it; the struct
// is the JSON form.
type Reason struct {
	Kind ReasonKind `json:"kind"`
	// Old and New are the version, platform or instruction texts.
	Old string `json:"old,omitempty"`
	New string `json:"new,omitempty"`
	// Parent is set for ReasonBase and ReasonParent.
	Parent *ParentChange `json:"parent,omitempty"`
	// Env lists every env entry that differs (ReasonEnv).
	Env []EnvChange `json:"env,omitempty"`
	// Inputs lists every input that differs (ReasonInput).
	Inputs []InputChange `json:"inputs,omitempty"`
	// Also names the later parts that differ as well.
	Also []ReasonKind `json:"also,omitempty"`
}

// StepRef names a step of the current build in explanations.
type StepRef struct {
	Index  int    `json:"index"`
	Total  int    `json:"total"`
	Stage  string `json:"stage"`
	Line   int    `json:"line"`
	Text   string `json:"text"`
	Cached bool   `json:"cached"`
}

// ParentChange is a changed parent state.
type ParentChange struct {
	Old Parent `json:"old"`
	New Parent `json:"new"`
	// Step is the step of this build whose result is the new parent, if
	// known.
	Step *StepRef `json:"step,omitempty"`
}

// Change says how an entry differs.
type Change string

// Changes of env entries and inputs.
const (
	Added   Change = "added"
	Removed Change = "removed"
	Changed Change = "changed"
)

// EnvChange is one env entry that differs.
type EnvChange struct {
	Kind   EnvKind `json:"kind"`
	Name   string  `json:"name,omitempty"`
	Change Change  `json:"change"`
	Old    string  `json:"old,omitempty"`
	New    string  `json:"new,omitempty"`
}

// InputChange is one input that differs.
type InputChange struct {
	Kind   InputKind `json:"kind"`
	Name   string    `json:"name,omitempty"`
	Change Change    `json:"change"`
	Old    v1.Hash   `json:"old,omitzero"`
	New    v1.Hash   `json:"new,omitzero"`
	// Files are the changed files of a context input, when both listings
	// are stored; at most [ExplainOptions].MaxFiles of them, MoreFiles
	// counts the rest.
	Files     []FileChange `json:"files,omitempty"`
	MoreFiles int          `json:"moreFiles,omitempty"`
	// NoListing: a listing was not available, so files cannot be named.
	NoListing bool `json:"noListing,omitempty"`
	// Step is the step of this build whose result is a stage input's new
	// state, if known.
	Step *StepRef `json:"step,omitempty"`
}

// ListingSource loads stored input listings; [*Store] is one.
type ListingSource interface {
	Files(id v1.Hash) (files []File, found bool, err error)
}

// ExplainOptions gives [Explain] what it needs to name things. The zero
// value explains without file names or step numbers.
type ExplainOptions struct {
	// Files loads the listings of context inputs to name changed files.
	Files ListingSource
	// Producer returns the step of the current build whose resulting
	// state is the given digest.
	Producer func(state v1.Hash) (StepRef, bool)
	// MaxFiles bounds the files named per input; 0 means 10.
	MaxFiles int
}

// Explain compares the parts of a step in the previous build with the
// parts of the step that missed now. It checks version, platform,
// parent, instruction, env and inputs in that order; Kind is the first
// that differs and Also lists the others. Equal parts give
// [ReasonRecordMissing].
func Explain(prev, cur Parts, opts ExplainOptions) Reason {
	prev, cur = prev.Normalize(), cur.Normalize()
	var r Reason
	add := func(k ReasonKind) bool {
		if r.Kind == "" {
			r.Kind = k
			return true
		}
		r.Also = append(r.Also, k)
		return false
	}
	if prev.Version != cur.Version && add(ReasonVersion) {
		r.Old, r.New = prev.Version, cur.Version
	}
	if prev.Platform != cur.Platform && add(ReasonPlatform) {
		r.Old, r.New = prev.Platform, cur.Platform
	}
	// Adding or removing COPY --link keys the layer without a parent
	// (kind none): that is the instruction's doing, which names it.
	linkToggled := (prev.Parent.Kind == ParentNone) != (cur.Parent.Kind == ParentNone) && prev.Instruction != cur.Instruction
	if !sameParent(prev.Parent, cur.Parent) && !linkToggled {
		kind := ReasonParent
		if prev.Parent.Kind != ParentStep || cur.Parent.Kind != ParentStep {
			kind = ReasonBase
		}
		if add(kind) {
			r.Parent = &ParentChange{Old: prev.Parent, New: cur.Parent}
			if ref, ok := produce(opts, cur.Parent.Digest); ok {
				r.Parent.Step = &ref
			}
		}
	}
	if prev.Instruction != cur.Instruction && add(ReasonInstruction) {
		r.Old, r.New = prev.Instruction, cur.Instruction
	}
	if env := diffEnv(prev.Env, cur.Env); env != nil && add(ReasonEnv) {
		r.Env = env
	}
	if inputs := diffInputs(prev.Inputs, cur.Inputs); inputs != nil && add(ReasonInput) {
		for i := range inputs {
			describeInput(&inputs[i], opts)
		}
		r.Inputs = inputs
	}
	if r.Kind == "" {
		r.Kind = ReasonRecordMissing
	}
	return r
}

func sameParent(a, b Parent) bool { return a.Kind == b.Kind && a.Digest == b.Digest }

func produce(opts ExplainOptions, state v1.Hash) (StepRef, bool) {
	if opts.Producer == nil || state == (v1.Hash{}) {
		return StepRef{}, false
	}
	return opts.Producer(state)
}

type envID struct {
	kind EnvKind
	name string
}

// diffEnv lists env entries added, removed or changed, in key order.
func diffEnv(prev, cur []EnvVar) []EnvChange {
	old := map[envID]string{}
	for _, e := range prev {
		old[envID{e.Kind, e.Name}] = e.Value
	}
	seen := map[envID]bool{}
	var out []EnvChange
	for _, e := range cur {
		id := envID{e.Kind, e.Name}
		seen[id] = true
		switch v, ok := old[id]; {
		case !ok:
			out = append(out, EnvChange{Kind: e.Kind, Name: e.Name, Change: Added, New: e.Value})
		case v != e.Value:
			out = append(out, EnvChange{Kind: e.Kind, Name: e.Name, Change: Changed, Old: v, New: e.Value})
		}
	}
	for _, e := range prev {
		if !seen[envID{e.Kind, e.Name}] {
			out = append(out, EnvChange{Kind: e.Kind, Name: e.Name, Change: Removed, Old: e.Value})
		}
	}
	slices.SortStableFunc(out, func(a, b EnvChange) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
	})
	return out
}

type inputID struct {
	kind InputKind
	name string
}

// diffInputs pairs inputs by kind and name and lists those that differ.
func diffInputs(prev, cur []Input) []InputChange {
	old := map[inputID]v1.Hash{}
	for _, in := range prev {
		old[inputID{in.Kind, in.Name}] = in.Digest
	}
	now := map[inputID]v1.Hash{}
	var out []InputChange
	for _, in := range cur {
		id := inputID{in.Kind, in.Name}
		now[id] = in.Digest
		switch d, ok := old[id]; {
		case !ok:
			out = append(out, InputChange{Kind: in.Kind, Name: in.Name, Change: Added, New: in.Digest})
		case d != in.Digest:
			out = append(out, InputChange{Kind: in.Kind, Name: in.Name, Change: Changed, Old: d, New: in.Digest})
		}
	}
	for _, id := range slices.Collect(maps.Keys(old)) {
		if _, ok := now[id]; !ok {
			out = append(out, InputChange{Kind: id.kind, Name: id.name, Change: Removed, Old: old[id]})
		}
	}
	slices.SortFunc(out, func(a, b InputChange) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// describeInput adds file names (context) or the producing step (stage).
func describeInput(c *InputChange, opts ExplainOptions) {
	switch c.Kind {
	case InputStage:
		if ref, ok := produce(opts, c.New); ok {
			c.Step = &ref
		}
	case InputContext:
		if c.Change != Changed {
			return
		}
		oldFiles, ok1 := loadListing(opts.Files, c.Old)
		newFiles, ok2 := loadListing(opts.Files, c.New)
		if !ok1 || !ok2 {
			c.NoListing = true
			return
		}
		files := DiffFiles(oldFiles, newFiles)
		limit := opts.MaxFiles
		if limit <= 0 {
			limit = 10
		}
		if len(files) > limit {
			c.MoreFiles = len(files) - limit
			files = files[:limit]
		}
		c.Files = files
	}
}

func loadListing(src ListingSource, id v1.Hash) ([]File, bool) {
	if src == nil {
		return nil, false
	}
	files, found, err := src.Files(id)
	return files, found && err == nil
}
