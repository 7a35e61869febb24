package inspect

import (
	"context"
	"maps"
	"slices"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// conflicts lists the paths img's own layers (those above oldBase's) write
// or delete that newBase changed relative to oldBase. A path the image
// writes exactly as the new base has it is no conflict.
func conflicts(ctx context.Context, oldBase, newBase, img *Image) ([]Conflict, error) {
	n, m := len(oldBase.Manifest.Layers), len(newBase.Manifest.Layers)
	var ds []v1.Descriptor
	ds = append(ds, oldBase.Manifest.Layers...)
	ds = append(ds, newBase.Manifest.Layers...)
	ds = append(ds, img.Manifest.Layers[n:]...)
	entries, err := readLayers(ctx, img.store, ds, readOptions{hash: true})
	if err != nil {
		return nil, err
	}
	tOld, tNew := mergedTree(entries[:n]), mergedTree(entries[n:n+m])
	changes := map[string]Change{}
	compareTrees(tOld.root, tNew.root, func(c Change) { changes[c.Path] = c }, compareOptions{everyDeleted: true})
	if len(changes) == 0 {
		return nil, nil
	}
	paths := slices.Sorted(maps.Keys(changes))
	byPath := map[string]Conflict{}
	for i, es := range entries[n+m:] {
		layer := n + i + 1
		written := map[string]bool{}
		for _, e := range es {
			if !e.whiteout && !e.opaque {
				written[e.Path] = true
			}
		}
		for _, e := range es {
			switch {
			case e.whiteout || e.opaque:
				for _, p := range below(paths, e.Path, e.whiteout) {
					c := changes[p]
					if c.Kind == Deleted || e.opaque && written[p] {
						continue // the new base removed it too, or the layer writes it again
					}
					cf := Conflict{Path: p, Image: "deletes", Layer: layer, Base: c.Kind, Fields: c.Fields}
					if p != e.Path {
						cf.Under = e.Path
					}
					byPath[p] = cf
				}
			default:
				c, ok := changes[e.Path]
				if !ok {
					continue
				}
				if nn := tNew.lookup(e.rel); nn != nil && len(differences(&e.File, &nn.File)) == 0 {
					continue
				}
				byPath[e.Path] = Conflict{Path: e.Path, Image: "writes", Layer: layer, Base: c.Kind, Fields: c.Fields}
			}
		}
	}
	out := make([]Conflict, 0, len(byPath))
	for _, p := range slices.Sorted(maps.Keys(byPath)) {
		out = append(out, byPath[p])
	}
	return out, nil
}

// below returns the paths of sorted that are under dir (and dir itself
// when self is set).
func below(sorted []string, dir string, self bool) []string {
	var out []string
	if self {
		if i, ok := slices.BinarySearch(sorted, dir); ok {
			out = append(out, sorted[i])
		}
	}
	prefix := strings.TrimSuffix(dir, "/") + "/"
	for i := sort.SearchStrings(sorted, prefix); i < len(sorted) && strings.HasPrefix(sorted[i], prefix); i++ {
		out = append(out, sorted[i])
	}
	return out
}
