package cache

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// KeyVersion is the version tag of the step key schema (docs/cache.md,
// "Key spec v1"). Any change to what [Parts.Canonical] writes must bump it;
// a golden test fails until it does.
const KeyVersion = "minibuild.step.v1"

// linkVersion tags the encoding hashed by [LinkState].
const linkVersion = "minibuild.link.v1"

// Parts is everything a step's key is derived from. The builder fills one
// per filesystem step (RUN, COPY, ADD, WORKDIR); [Parts.Key] hashes it.
// Records and build logs keep the Parts so [Explain] can name what changed.
//
// Every field is keyed except those whose comment says otherwise. Some
// things are left out on purpose (docs/cache.md, "Left out on purpose"):
// mtimes, source owners, the base image's name, the Dockerfile's path and
// line numbers, and step indexes — none of them changes the step's result.
type Parts struct {
	// Version is the schema tag; empty means [KeyVersion].
	Version string `json:"version"`
	// Parent is the filesystem state the step runs on.
	Parent Parent `json:"parent"`
	// Instruction is the normalized instruction text ([Instruction.String]):
	// after ARG/ENV expansion where Docker expands, flags in canonical
	// form, heredoc bodies included.
	Instruction string `json:"instruction"`
	// Env is what the step can observe of the stage's state ([Scope.Observed]).
	// Order does not matter: the key sorts it.
	Env []EnvVar `json:"env,omitempty"`
	// Inputs are the digests of everything read from outside the parent
	// state. Order does not matter: the key sorts it.
	Inputs []Input `json:"inputs,omitempty"`
	// Platform is "linux/<arch>[/<variant>]".
	Platform string `json:"platform"`
}

// ParentKind says what a [Parent] digest names.
type ParentKind string

// Parent kinds.
const (
	// ParentStep: the state after an earlier step (its key, or for a
	// COPY --link step its [LinkState]), possibly in another stage.
	ParentStep ParentKind = "step"
	// ParentImage: a base image, by the digest of its platform-specific
	// manifest.
	ParentImage ParentKind = "image"
	// ParentScratch: the empty filesystem (FROM scratch).
	ParentScratch ParentKind = "scratch"
	// ParentNone: no parent at all; only the layer key of COPY --link.
	ParentNone ParentKind = "none"
)

// Parent is the state a step starts from.
type Parent struct {
	Kind   ParentKind `json:"kind"`
	Digest v1.Hash    `json:"digest,omitzero"` // zero for scratch and none
	// Name is for people only and NOT keyed: the base image reference as
	// written (ParentImage) or the stage name (ParentStep across stages).
	// Re-tagging the same digest must not invalidate the cache.
	Name string `json:"name,omitempty"`
}

// Scratch is the parent of the first step of a FROM scratch stage.
var Scratch = Parent{Kind: ParentScratch}

// StepParent is the parent naming the state produced by an earlier step.
func StepParent(state v1.Hash) Parent { return Parent{Kind: ParentStep, Digest: state} }

// ImageParent is the parent naming a base image by manifest digest; name is
// kept for explanations only.
func ImageParent(manifest v1.Hash, name string) Parent {
	return Parent{Kind: ParentImage, Digest: manifest, Name: name}
}

// EnvKind names what an [EnvVar] is.
type EnvKind string

// Env kinds, as their Dockerfile instruction names.
const (
	EnvENV     EnvKind = "ENV"     // a variable of the image config (ENV, or the base image's)
	EnvARG     EnvKind = "ARG"     // a build arg in scope with a value, not shadowed by an ENV
	EnvWorkdir EnvKind = "WORKDIR" // the working directory; Name is empty
	EnvUser    EnvKind = "USER"    // the user; Name is empty
	EnvShell   EnvKind = "SHELL"   // the shell as a JSON array; Name is empty
)

// EnvVar is one observable piece of a stage's state. The structure (not a
// "K=V" string) lets [Explain] say "ARG VERSION changed 1.2 → 1.3".
type EnvVar struct {
	Kind  EnvKind `json:"kind"`
	Name  string  `json:"name,omitempty"`
	Value string  `json:"value"`
}

// InputKind says where an [Input] comes from.
type InputKind string

// Input kinds.
const (
	// InputContext: files from a local build context; Digest is the
	// [Digest] of the selected listing (stored with [Store.PutFiles]).
	// Name is the named context ("" for the main one).
	InputContext InputKind = "context"
	// InputStage: another stage (COPY --from=stage, RUN --mount from=);
	// Digest is that stage's result state, Name the stage name.
	InputStage InputKind = "stage"
	// InputImage: an image used as a source (COPY --from=image); Digest
	// is its manifest digest, Name the reference as written.
	InputImage InputKind = "image"
	// InputURL: ADD of a URL; Digest is the content sha256 (or the
	// --checksum value, which the download is verified against), Name
	// the URL.
	InputURL InputKind = "url"
)

// Input is one thing a step reads besides its parent.
type Input struct {
	Kind   InputKind `json:"kind"`
	Name   string    `json:"name,omitempty"`
	Digest v1.Hash   `json:"digest,omitzero"`
}

// Normalize returns p as it is keyed and stored: Version filled in, Env and
// Inputs sorted (in copies; p is not changed).
func (p Parts) Normalize() Parts {
	if p.Version == "" {
		p.Version = KeyVersion
	}
	p.Env = slices.Clone(p.Env)
	slices.SortFunc(p.Env, func(a, b EnvVar) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Value, b.Value))
	})
	p.Inputs = slices.Clone(p.Inputs)
	slices.SortFunc(p.Inputs, func(a, b Input) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Digest.String(), b.Digest.String()))
	})
	return p
}

// Canonical returns the exact bytes [Parts.Key] hashes: the canonical JSON
// of docs/cache.md, "Canonical encoding". It is also the key material a
// debug flag prints.
func (p Parts) Canonical() []byte {
	p = p.Normalize()
	var w canonWriter
	w.beginObject()
	w.key("version").str(p.Version)
	w.key("parent").parent(p.Parent)
	w.key("instruction").str(p.Instruction)
	w.key("env").beginArray()
	for _, e := range p.Env {
		w.elem().beginObject()
		w.key("kind").str(string(e.Kind))
		w.key("name").str(e.Name)
		w.key("value").str(e.Value)
		w.endObject()
	}
	w.endArray()
	w.key("inputs").beginArray()
	for _, in := range p.Inputs {
		w.elem().beginObject()
		w.key("kind").str(string(in.Kind))
		w.key("name").str(in.Name)
		w.key("digest").hash(in.Digest)
		w.endObject()
	}
	w.endArray()
	w.key("platform").str(p.Platform)
	w.endObject()
	return w.b
}

// Key is the step's cache key: sha256 of [Parts.Canonical].
func (p Parts) Key() v1.Hash { return sha256Hash(p.Canonical()) }

// LinkState is the state after a COPY --link step: H(parent, layer key).
// The layer key (the step's [Parts.Key], with [ParentNone]) finds the
// layer whatever the base; the state, used as the next step's parent,
// still changes with the base, so later non-link steps re-run on it.
func LinkState(parent Parent, layerKey v1.Hash) v1.Hash {
	var w canonWriter
	w.beginObject()
	w.key("version").str(linkVersion)
	w.key("parent").parent(parent)
	w.key("layer").hash(layerKey)
	w.endObject()
	return sha256Hash(w.b)
}

// ScratchState is the state digest of an empty filesystem, for use where
// a stage with no filesystem step on scratch is an input (COPY --from).
func ScratchState() v1.Hash { return sha256Hash([]byte("minibuild.scratch.v1")) }

// State is the digest a later step or stage sees as this parent's result:
// the step state or image digest, or [ScratchState] for scratch.
func (p Parent) State() v1.Hash {
	if p.Kind == ParentScratch {
		return ScratchState()
	}
	return p.Digest
}

func sha256Hash(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}
