package inspect

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Waste is one hidden version of a file: bytes a layer holds that no path
// of the final image shows.
type Waste struct {
	Path      string    `json:"path"` // where the bytes were written
	Bytes     int64     `json:"bytes"`
	Kind      WasteKind `json:"kind"`
	WrittenBy int       `json:"written_by"` // 1-based index of the layer holding the bytes
	HiddenBy  int       `json:"hidden_by"`  // 1-based index of the layer that hid them (charged)
}

// LayerBloat is one layer's part of a [BloatReport].
type LayerBloat struct {
	Layer       int     `json:"layer"` // 1-based, bottom up
	Digest      v1.Hash `json:"digest"`
	CreatedBy   string  `json:"created_by,omitempty"`
	Instruction string  `json:"instruction,omitempty"` // [Instruction] of CreatedBy
	Base        bool    `json:"base,omitempty"`        // a layer of the base image (see [Image.BaseLayers])
	// Bytes is the content bytes the layer holds; Hidden the part of
	// them that later layers hide.
	Bytes  int64 `json:"bytes"`
	Hidden int64 `json:"hidden"`
	// Wasted is the bytes this layer hid, charged to it, by kind.
	Wasted       int64               `json:"wasted"`
	WastedByKind map[WasteKind]int64 `json:"wasted_by_kind,omitempty"`
	// Hint is a one-line fix for the way this layer wastes bytes.
	Hint string `json:"hint,omitempty"`
}

// Offender is a path whose hidden versions waste bytes.
type Offender struct {
	Path     string  `json:"path"`
	Bytes    int64   `json:"bytes"`
	Versions []Waste `json:"versions"` // bottom up
}

// BloatReport says what an image's layers cost beyond its final tree.
//
// TotalBytes is the content bytes of all layers, VisibleBytes those the
// final tree shows (hardlinked content once), WastedBytes the difference,
// charged to the layers that hid them. Efficiency is
// VisibleBytes/TotalBytes (1 for an image with no content), dive's score
// for the same image whenever no overwrite grows a file: dive divides the
// sum of the smallest version of every path by the sum of all versions.
type BloatReport struct {
	TotalBytes   int64        `json:"total_bytes"`
	VisibleBytes int64        `json:"visible_bytes"`
	WastedBytes  int64        `json:"wasted_bytes"`
	Efficiency   float64      `json:"efficiency"`
	Layers       []LayerBloat `json:"layers"`
	// Offenders lists paths by wasted bytes, biggest first.
	Offenders []Offender `json:"offenders"`
	// Hints is one line per pattern found, in layer order.
	Hints []string `json:"hints,omitempty"`
}

// Bloat reads every layer of the image (hashing file contents, to tell a
// copy-up from an overwrite) and reports which bytes later layers hide and
// which layer hid them: an overwrite, a deletion (whiteout, opaque
// directory) or a copy-up (same content written again) is charged to the
// layer that did it.
func (im *Image) Bloat(ctx context.Context) (*BloatReport, error) {
	entries, err := readLayers(ctx, im.store, im.Manifest.Layers, readOptions{hash: true})
	if err != nil {
		return nil, fmt.Errorf("bloat of %s: %w", im.Ref, err)
	}
	r := &BloatReport{}
	var wastes []Waste
	t := newTree()
	t.hidden = func(n *node, by int, how WasteKind, gone bool) {
		if gone && n.content.size > 0 {
			wastes = append(wastes, Waste{
				Path: n.content.path, Bytes: n.content.size, Kind: how,
				WrittenBy: n.content.layer + 1, HiddenBy: by + 1,
			})
		}
	}
	base := im.BaseLayers()
	for i, l := range im.Layers() {
		t.apply(i, entries[i])
		lb := LayerBloat{Layer: l.Index, Digest: l.Descriptor.Digest, Base: i < base, Bytes: layerBytes(entries[i])}
		if l.History != nil {
			lb.CreatedBy, lb.Instruction = l.History.CreatedBy, Instruction(l.History.CreatedBy)
		}
		r.Layers = append(r.Layers, lb)
		r.TotalBytes += lb.Bytes
	}
	for _, w := range wastes {
		r.WastedBytes += w.Bytes
		r.Layers[w.WrittenBy-1].Hidden += w.Bytes
		lb := &r.Layers[w.HiddenBy-1]
		lb.Wasted += w.Bytes
		if lb.WastedByKind == nil {
			lb.WastedByKind = map[WasteKind]int64{}
		}
		lb.WastedByKind[w.Kind] += w.Bytes
	}
	r.VisibleBytes = r.TotalBytes - r.WastedBytes
	r.Efficiency = 1
	if r.TotalBytes > 0 {
		r.Efficiency = float64(r.VisibleBytes) / float64(r.TotalBytes)
	}
	r.Offenders = offenders(wastes)
	r.Hints = addHints(r.Layers, wastes)
	return r, nil
}

// offenders groups wastes by path, biggest first.
func offenders(wastes []Waste) []Offender {
	byPath := map[string]*Offender{}
	for _, w := range wastes {
		o := byPath[w.Path]
		if o == nil {
			o = &Offender{Path: w.Path}
			byPath[w.Path] = o
		}
		o.Bytes += w.Bytes
		o.Versions = append(o.Versions, w)
	}
	out := make([]Offender, 0, len(byPath))
	for _, p := range slices.Sorted(maps.Keys(byPath)) {
		o := byPath[p]
		slices.SortFunc(o.Versions, func(a, b Waste) int { return cmp.Compare(a.WrittenBy, b.WrittenBy) })
		out = append(out, *o)
	}
	slices.SortStableFunc(out, func(a, b Offender) int { return cmp.Compare(b.Bytes, a.Bytes) })
	return out
}

// Hints, one per pattern.
const (
	hintChmod = "RUN chmod/chown -R copies every file it touches into a new layer: " +
		"set modes and owners where the files are written (COPY --chmod/--chown, or in the same RUN)"
	hintCopyUp = "rewriting files with unchanged content copies them into a new layer: " +
		"leave files of earlier steps alone, or combine the RUN steps"
	hintDelete = "deleting files in a later step does not shrink the image: " +
		"delete them in the same RUN that creates them, or use a multi-stage build and COPY --from only what you need"
	hintOverwrite = "files written again by a later step still ship in the earlier layer: " +
		"combine the RUN steps, or use a multi-stage build and copy the final files once"
	hintFromBase = "these bytes come from the base image: only a smaller base, or a multi-stage build " +
		"that copies what you need onto one, takes them out"
	hintInBase = "waste inside the base image: pick a smaller base, or build one stage on it and COPY --from onto a slimmer one"
)

// addHints sets the hint of every layer that wastes bytes and returns the
// distinct hints in layer order.
func addHints(layers []LayerBloat, wastes []Waste) []string {
	fromBase := make([]int64, len(layers)) // bytes each layer hid that the base wrote
	for _, w := range wastes {
		if layers[w.WrittenBy-1].Base {
			fromBase[w.HiddenBy-1] += w.Bytes
		}
	}
	var hints []string
	for i := range layers {
		lb := &layers[i]
		if lb.Wasted == 0 {
			continue
		}
		switch {
		case lb.Base:
			lb.Hint = hintInBase
		case fromBase[i]*2 > lb.Wasted:
			lb.Hint = hintFromBase
		default:
			lb.Hint = kindHint(dominantKind(lb.WastedByKind), lb.Instruction)
		}
		if !slices.Contains(hints, lb.Hint) {
			hints = append(hints, lb.Hint)
		}
	}
	return hints
}

// dominantKind is the kind with the most bytes (ties: the first in
// WasteDeleted, WasteCopiedUp, WasteOverwritten order).
func dominantKind(by map[WasteKind]int64) WasteKind {
	best := WasteDeleted
	for _, k := range []WasteKind{WasteDeleted, WasteCopiedUp, WasteOverwritten} {
		if by[k] > by[best] {
			best = k
		}
	}
	return best
}

func kindHint(k WasteKind, instruction string) string {
	switch k {
	case WasteCopiedUp:
		if isChmodChown(instruction) {
			return hintChmod
		}
		return hintCopyUp
	case WasteDeleted:
		return hintDelete
	}
	return hintOverwrite
}

// isChmodChown reports a RUN whose command line runs chmod, chown or chgrp.
func isChmodChown(instruction string) bool {
	cmdline, ok := strings.CutPrefix(instruction, "RUN ")
	if !ok {
		return false
	}
	for f := range strings.FieldsFuncSeq(cmdline, func(r rune) bool {
		return r == ' ' || r == '\t' || r == ';' || r == '&' || r == '|' || r == '(' || r == ')' || r == '\n'
	}) {
		switch f[strings.LastIndexByte(f, '/')+1:] {
		case "chmod", "chown", "chgrp":
			return true
		}
	}
	return false
}
