package inspect

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"minibuild/oci"
)

// Sentinel errors of [PlanRebase].
var (
	// ErrNotPrefix: the old base is not a prefix of the image (see
	// [PrefixError] for where they differ).
	ErrNotPrefix = errors.New("old base is not a prefix of the image")
	// ErrNoBase: the image records no base and none was given.
	ErrNoBase = errors.New("no base image known")
	// ErrNoTag: the result needs a name and none is known.
	ErrNoTag = errors.New("no name for the result")
)

// PrefixError is a refusal to rebase: the old base's layers or history are
// not where the image should have them. It wraps [ErrNotPrefix].
type PrefixError struct {
	Base, Image string // the references given
	What        string // "layer" or "history entry"
	Index       int    // 1-based position of the first difference
	// BaseHas and ImageHas describe each side at that position ("" when
	// it has nothing there).
	BaseHas, ImageHas string
}

func (e *PrefixError) Error() string {
	return fmt.Sprintf("%s is not the base of %s: %s %d differs: the image has %s, the base has %s",
		e.Base, e.Image, e.What, e.Index, orNothing(e.ImageHas), orNothing(e.BaseHas))
}

// Unwrap makes errors.Is(err, ErrNotPrefix) true.
func (e *PrefixError) Unwrap() error { return ErrNotPrefix }

func orNothing(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// RebaseRequest says what to rebase onto what. Image and Onto are
// required.
type RebaseRequest struct {
	Image string // the image to rebase
	Onto  string // the new base
	// From is the old base; "" reads the image's base annotations
	// (org.opencontainers.image.base.digest, else .name).
	From string
	// Tag names the result; "" is the image's own tag.
	Tag string
}

// Conflict is a path the image's own layers write or delete and that the
// new base changed relative to the old one: in the rebased image the
// image's version wins, which a rebuild might not do.
type Conflict struct {
	Path string `json:"path"`
	// Image is what the image's layer does to Path: "writes" or
	// "deletes"; Under is the deleted or opaque directory that deletes it
	// when that is not Path itself.
	Image string `json:"image"`
	Under string `json:"under,omitempty"`
	Layer int    `json:"layer"` // 1-based index in the image of the layer that does it
	// Base is how the new base differs from the old at Path, with the
	// attributes that differ for a C.
	Base   ChangeKind `json:"base"`
	Fields []string   `json:"fields,omitempty"`
}

// RebasePlan is what a rebase does, computed without writing anything.
type RebasePlan struct {
	Image, OldBase, NewBase *Image
	// Notes are facts about how the bases were found (a tag that moved).
	Notes []string
	// Warnings are things a rebuild would do differently (ENV values
	// made from a variable the base changed, ONBUILD triggers).
	Warnings []string
	// Dropped are the old base's layers, Added the new base's, Kept the
	// image's own.
	Dropped, Added, Kept []Layer
	Env                  []EnvDecision
	Fields               []FieldDecision
	Conflicts            []Conflict
	// UpToDate: the image is on the new base already; Write only tags.
	UpToDate bool
	// Tag is the name Write gives the result.
	Tag string
	// The result: config, layers and manifest annotations.
	Config      *v1.ConfigFile
	Layers      []v1.Descriptor
	Annotations map[string]string
}

// PlanRebase works out how to move req.Image from its old base onto
// req.Onto: the old base must be a prefix of the image's layers (diff IDs)
// and of its history, else the error is a [*PrefixError]. The image's own
// layers are kept as they are; its config is reconciled (see
// [EnvDecision], [FieldDecision]); paths its layers change that the new
// base changed too are listed as conflicts, which reads the layers of
// both bases and of the image. Nothing is written.
func PlanRebase(ctx context.Context, s *oci.Store, req RebaseRequest) (*RebasePlan, error) {
	img, err := Open(s, req.Image)
	if err != nil {
		return nil, fmt.Errorf("rebase: %w", err)
	}
	p := &RebasePlan{Image: img, Tag: img.Name}
	if req.Tag != "" {
		if p.Tag, err = oci.ParseName(req.Tag); err != nil || strings.Contains(p.Tag, "@") {
			return nil, fmt.Errorf("rebase %s: result name %q: %w", req.Image, req.Tag, errors.Join(oci.ErrInvalid, err))
		}
	}
	if p.Tag == "" {
		return nil, fmt.Errorf("rebase %s: %w: the image has no tag; name the result", req.Image, ErrNoTag)
	}
	if p.OldBase, p.Notes, err = oldBase(s, img, req.From); err != nil {
		return nil, fmt.Errorf("rebase %s: %w", req.Image, err)
	}
	if p.NewBase, err = Open(s, req.Onto); err != nil {
		return nil, fmt.Errorf("rebase %s: new base: %w", req.Image, err)
	}
	own, err := checkPrefix(p.OldBase, img)
	if err != nil {
		if name := img.Manifest.Annotations[AnnotationBaseName]; req.From == "" && img.Manifest.Annotations[AnnotationBaseDigest] == "" {
			return nil, fmt.Errorf("rebase: %w (the image records only its base's name, %s, whose tag may have moved since the build: give the old base)", err, name)
		}
		return nil, fmt.Errorf("rebase: %w", err)
	}
	if err := checkPlatform(p.NewBase, img); err != nil {
		return nil, fmt.Errorf("rebase %s: %w", req.Image, err)
	}
	n := len(p.OldBase.Manifest.Layers)
	p.Dropped, p.Added, p.Kept = p.OldBase.Layers(), p.NewBase.Layers(), img.Layers()[n:]
	p.UpToDate = p.NewBase.Descriptor.Digest == p.OldBase.Descriptor.Digest
	m := mergeConfig(&p.OldBase.Config.Config, &p.NewBase.Config.Config, &img.Config.Config, own)
	p.Env, p.Fields, p.Warnings = m.env, m.fields, m.warnings
	if !p.UpToDate {
		if p.Conflicts, err = conflicts(ctx, p.OldBase, p.NewBase, img); err != nil {
			return nil, fmt.Errorf("rebase %s: %w", req.Image, err)
		}
	}
	p.result(m.config, own, req.Onto)
	return p, nil
}

// result fills in the rebased config, layers and annotations.
func (p *RebasePlan) result(cc v1.Config, own []v1.History, onto string) {
	if p.UpToDate {
		p.Config, p.Layers, p.Annotations = p.Image.Config, p.Image.Manifest.Layers, p.Image.Manifest.Annotations
		return
	}
	n := len(p.OldBase.Manifest.Layers)
	cfg := p.Image.Config.DeepCopy()
	cfg.Config = cc
	cfg.RootFS.DiffIDs = append(slices.Clone(p.NewBase.Config.RootFS.DiffIDs), p.Image.Config.RootFS.DiffIDs[n:]...)
	cfg.History = append(slices.Clone(p.NewBase.Config.History), own...)
	p.Config = cfg
	p.Layers = append(slices.Clone(p.NewBase.Manifest.Layers), p.Image.Manifest.Layers[n:]...)
	p.Annotations = maps.Clone(p.Image.Manifest.Annotations)
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Annotations[AnnotationBaseDigest] = p.NewBase.Descriptor.Digest.String()
	if name := baseName(p.NewBase, onto); name != "" {
		p.Annotations[AnnotationBaseName] = name
	} else {
		delete(p.Annotations, AnnotationBaseName)
	}
}

// baseName is the name to record for the new base: its tag, or the
// reference given when it is a name.
func baseName(nb *Image, onto string) string {
	if nb.Name != "" {
		return nb.Name
	}
	if strings.HasPrefix(onto, "sha256:") {
		return ""
	}
	n, err := oci.ParseName(onto)
	if err != nil {
		return ""
	}
	return n
}

// Write stores the rebased image and tags it p.Tag; the result of an
// up-to-date plan is the image itself. It returns the manifest's
// descriptor.
func (p *RebasePlan) Write(ctx context.Context) (v1.Descriptor, error) {
	s := p.Image.store
	d := p.Image.Descriptor
	if !p.UpToDate {
		var err error
		if d, err = s.PutImage(ctx, p.Config, p.Layers, p.Annotations); err != nil {
			return v1.Descriptor{}, fmt.Errorf("rebase %s: %w", p.Image.Ref, err)
		}
	}
	if err := s.Tag(ctx, p.Tag, d); err != nil {
		return v1.Descriptor{}, fmt.Errorf("rebase %s: %w", p.Image.Ref, err)
	}
	return d, nil
}

// oldBase finds the image's old base: from, or the image's annotations.
func oldBase(s *oci.Store, img *Image, from string) (*Image, []string, error) {
	if from != "" {
		b, err := Open(s, from)
		if err != nil {
			return nil, nil, fmt.Errorf("old base: %w", err)
		}
		return b, nil, nil
	}
	name, dgst := img.Manifest.Annotations[AnnotationBaseName], img.Manifest.Annotations[AnnotationBaseDigest]
	if dgst == "" && name == "" {
		return nil, nil, fmt.Errorf("%w: the image records no %s or %s; give the old base", ErrNoBase, AnnotationBaseDigest, AnnotationBaseName)
	}
	var now *Image // what the recorded name points at today
	if name != "" {
		now, _ = Open(s, name)
	}
	if dgst == "" {
		if now == nil {
			return nil, nil, fmt.Errorf("old base %s (recorded without a digest): %w", name, oci.ErrNotFound)
		}
		return now, []string{fmt.Sprintf("the image records no base digest: using %s as it is now (%s)", name, now.Descriptor.Digest)}, nil
	}
	b, err := Open(s, dgst)
	switch {
	case err == nil && now != nil && now.Descriptor.Digest != b.Descriptor.Digest:
		return b, []string{fmt.Sprintf("%s has moved since the image was built: it now points at %s; the old base is the recorded %s",
			name, now.Descriptor.Digest, b.Descriptor.Digest)}, nil
	case err == nil:
		return b, nil, nil
	case errors.Is(err, oci.ErrNotFound) && now != nil:
		return nil, nil, fmt.Errorf("old base %s@%s is not in the store, and %s has moved since the build (it now points at %s): pull the old base by digest or give it: %w",
			name, dgst, name, now.Descriptor.Digest, err)
	case errors.Is(err, oci.ErrNotFound) && name != "":
		return nil, nil, fmt.Errorf("old base %s@%s is not in the store (pull it by digest or give it): %w", name, dgst, err)
	}
	return nil, nil, fmt.Errorf("old base: %w", err)
}

// checkPrefix checks that base is a prefix of img (layers, then history)
// and returns img's own history entries.
func checkPrefix(base, img *Image) ([]v1.History, error) {
	if err := checkLayerPrefix(base, img); err != nil {
		return nil, err
	}
	bh, ih := base.Config.History, img.Config.History
	for i := range bh {
		var have string
		if i < len(ih) {
			if ih[i].CreatedBy == bh[i].CreatedBy && ih[i].EmptyLayer == bh[i].EmptyLayer {
				continue
			}
			have = describeHistory(ih[i])
		}
		return nil, &PrefixError{Base: base.Ref, Image: img.Ref, What: "history entry", Index: i + 1,
			BaseHas: describeHistory(bh[i]), ImageHas: have}
	}
	return ih[len(bh):], nil
}

// checkLayerPrefix checks that base's diff IDs start img's.
func checkLayerPrefix(base, img *Image) error {
	bd, id := base.Config.RootFS.DiffIDs, img.Config.RootFS.DiffIDs
	for i := range bd {
		var have string
		if i < len(id) {
			if id[i] == bd[i] {
				continue
			}
			have = "layer " + shortDigest(id[i])
		}
		return &PrefixError{Base: base.Ref, Image: img.Ref, What: "layer", Index: i + 1,
			BaseHas: "layer " + shortDigest(bd[i]), ImageHas: have}
	}
	return nil
}

func describeHistory(h v1.History) string {
	s := fmt.Sprintf("%q", Instruction(h.CreatedBy))
	if h.EmptyLayer {
		s += " (no layer)"
	}
	return s
}

// shortDigest is "sha256:" and 12 hex digits.
func shortDigest(h v1.Hash) string {
	if len(h.Hex) > 12 {
		return h.Algorithm + ":" + h.Hex[:12]
	}
	return h.String()
}

// checkPlatform refuses a new base for another platform than the image's.
func checkPlatform(nb, img *Image) error {
	a, b := nb.Config, img.Config
	if a.OS != b.OS || a.Architecture != b.Architecture || a.Variant != b.Variant {
		return fmt.Errorf("the new base is %s/%s%s, the image %s/%s%s", a.OS, a.Architecture, slashed(a.Variant), b.OS, b.Architecture, slashed(b.Variant))
	}
	return nil
}

func slashed(s string) string {
	if s == "" {
		return ""
	}
	return "/" + s
}
