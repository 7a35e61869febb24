package inspect

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ChangeKind is how a path changed, in `docker diff`'s letters.
type ChangeKind string

// Change kinds.
const (
	Added   ChangeKind = "A"
	Changed ChangeKind = "C"
	Deleted ChangeKind = "D"
)

// Change is one changed path.
type Change struct {
	Kind ChangeKind `json:"kind"`
	Path string     `json:"path"`
	// Size is the content bytes: of the new file for A and C, of
	// everything removed (the path and what was below it) for D.
	Size int64 `json:"size"`
	// Fields are the attributes a C changed ("type", "mode", "owner",
	// "content", "link", "xattrs"; see the package doc); empty when a
	// layer wrote the path again without changing them (a directory whose
	// children changed, a file touched).
	Fields []string `json:"fields,omitempty"`
	Before *File    `json:"before,omitempty"` // nil for A
	After  *File    `json:"after,omitempty"`  // nil for D
}

// LayerDiff is what one layer changed.
type LayerDiff struct {
	Layer   Layer
	Changes []Change
}

// DiffLayer compares layer n (1-based from the bottom; negative counts from
// the top, -1 being the last layer, and so does 0) with the merged tree of the
// layers below it: an entry for a path present below is C, one for a new
// path A, a whiteout D (one D for a deleted directory, sized with what was
// in it); an opaque directory deletes the lower children the layer does
// not write again. Changes come sorted by path.
func (im *Image) DiffLayer(ctx context.Context, n int) (*LayerDiff, error) {
	layers := im.Layers()
	i, err := layerIndex(n, len(layers))
	if err != nil {
		return nil, fmt.Errorf("diff %s: %w", im.Ref, err)
	}
	entries, err := readLayers(ctx, im.store, im.Manifest.Layers[:i+1], readOptions{hash: true})
	if err != nil {
		return nil, fmt.Errorf("diff %s: %w", im.Ref, err)
	}
	lower := mergedTree(entries[:i])
	return &LayerDiff{Layer: layers[i], Changes: layerChanges(lower, entries[i])}, nil
}

// layerIndex turns a user's layer number into a 0-based index.
func layerIndex(n, count int) (int, error) {
	if count == 0 {
		return 0, fmt.Errorf("the image has no layers")
	}
	i := n - 1
	switch {
	case n == 0:
		i = count - 1
	case n < 0:
		i = count + n
	}
	if i < 0 || i >= count {
		return 0, fmt.Errorf("no layer %d: the image has %d layers (1 to %d, or -1 to -%d from the top)", n, count, count, count)
	}
	return i, nil
}

// layerChanges lists what the entries es of one layer change in lower.
func layerChanges(lower *tree, es []entry) []Change {
	written := map[string]*entry{}
	for i := range es {
		if e := &es[i]; !e.whiteout && !e.opaque && e.rel != "." {
			written[e.rel] = e
		}
	}
	byPath := map[string]Change{}
	deleted := func(n *node) {
		before := n.File
		byPath[n.Path] = Change{Kind: Deleted, Path: n.Path, Size: subtreeBytes(n), Before: &before}
	}
	for i := range es {
		e := &es[i]
		switch n := lower.lookup(e.rel); {
		case n == nil:
		case e.whiteout:
			deleted(n)
		case e.opaque && n.isDir():
			hiddenChildren(n, written, deleted)
		}
	}
	for rel, e := range written {
		after := e.File
		c := Change{Kind: Added, Path: e.Path, Size: e.Size, After: &after}
		if n := lower.lookup(rel); n != nil {
			before := n.File
			c.Kind, c.Before, c.Fields = Changed, &before, differences(&before, &after)
			if n.isDir() && !e.isDir() {
				hiddenChildren(n, written, deleted) // a directory replaced: what was in it goes
			}
		}
		byPath[c.Path] = c
	}
	return sortedChanges(byPath)
}

// hiddenChildren reports the lower children of dir that the layer does not
// write again, with deleted: the topmost ones only, as one D stands for
// what is below it.
func hiddenChildren(dir *node, written map[string]*entry, deleted func(*node)) {
	for _, name := range slices.Sorted(maps.Keys(dir.kids)) {
		k := dir.kids[name]
		rel := strings.TrimPrefix(k.Path, "/")
		if _, ok := written[rel]; !ok {
			deleted(k)
			continue
		}
		if k.isDir() {
			hiddenChildren(k, written, deleted)
		}
	}
}

func sortedChanges(byPath map[string]Change) []Change {
	out := make([]Change, 0, len(byPath))
	for _, p := range slices.Sorted(maps.Keys(byPath)) {
		out = append(out, byPath[p])
	}
	return out
}

// DiffImages compares the merged trees of a and b: a path only in b is A,
// only in a D (one D for a deleted directory, sized with what was in it),
// in both but different (see [Change.Fields]) C. Directories are C only
// when their own attributes differ, not because their children did.
// Layers the images share are read once.
func DiffImages(ctx context.Context, a, b *Image) ([]Change, error) {
	trees, err := imageTrees(ctx, a, b)
	if err != nil {
		return nil, fmt.Errorf("diff %s %s: %w", a.Ref, b.Ref, err)
	}
	var out []Change
	compareTrees(trees[0].root, trees[1].root, func(c Change) { out = append(out, c) }, compareOptions{})
	slices.SortFunc(out, func(x, y Change) int { return strings.Compare(x.Path, y.Path) })
	return out, nil
}

// imageTrees reads the layers of imgs (all in one store) and returns their
// merged trees.
func imageTrees(ctx context.Context, imgs ...*Image) ([]*tree, error) {
	var ds []v1.Descriptor
	for _, im := range imgs {
		ds = append(ds, im.Manifest.Layers...)
	}
	entries, err := readLayers(ctx, imgs[0].store, ds, readOptions{hash: true})
	if err != nil {
		return nil, err
	}
	trees := make([]*tree, len(imgs))
	for i, im := range imgs {
		n := len(im.Manifest.Layers)
		trees[i] = mergedTree(entries[:n])
		entries = entries[n:]
	}
	return trees, nil
}

// compareOptions tunes compareTrees.
type compareOptions struct {
	// everyDeleted reports every path below a deleted directory too, not
	// only the directory.
	everyDeleted bool
}

// compareTrees emits the changes from the children of a to those of b.
func compareTrees(a, b *node, emit func(Change), opts compareOptions) {
	names := slices.Sorted(maps.Keys(a.kids))
	for name := range b.kids {
		if _, ok := a.kids[name]; !ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		ka, kb := a.kids[name], b.kids[name]
		switch {
		case kb == nil:
			emitDeleted(ka, emit, opts)
		case ka == nil:
			emitAdded(kb, emit)
		default:
			if f := differences(&ka.File, &kb.File); len(f) > 0 {
				before, after := ka.File, kb.File
				emit(Change{Kind: Changed, Path: kb.Path, Size: kb.Size, Fields: f, Before: &before, After: &after})
			}
			compareTrees(ka, kb, emit, opts)
		}
	}
}

func emitDeleted(n *node, emit func(Change), opts compareOptions) {
	before := n.File
	emit(Change{Kind: Deleted, Path: n.Path, Size: subtreeBytes(n), Before: &before})
	if opts.everyDeleted {
		for _, name := range slices.Sorted(maps.Keys(n.kids)) {
			emitDeleted(n.kids[name], emit, opts)
		}
	}
}

func emitAdded(n *node, emit func(Change)) {
	after := n.File
	emit(Change{Kind: Added, Path: n.Path, Size: n.Size, After: &after})
	for _, name := range slices.Sorted(maps.Keys(n.kids)) {
		emitAdded(n.kids[name], emit)
	}
}
