package inspect

import (
	"maps"
	"path"
	"slices"
	"strings"
)

// node is one path of a merged tree.
type node struct {
	File
	layer   int      // index of the layer that wrote it; -1: implied by a child
	content *content // regular files and hardlinks to them; nil otherwise
	kids    map[string]*node
}

func (n *node) isDir() bool { return n.Type == TypeDir }

// content is the bytes of one regular file entry of one layer, shared by the
// hardlinks to it.
type content struct {
	size  int64
	refs  int    // paths of the tree that show these bytes
	layer int    // the layer that holds them
	path  string // the path they were written at
}

// WasteKind says how a layer hid the bytes of a file below it.
type WasteKind string

// How a file's bytes can be hidden.
const (
	// WasteOverwritten: a later layer writes the path with other content (or
	// as another type).
	WasteOverwritten WasteKind = "overwritten"
	// WasteDeleted: a whiteout, an opaque directory or a directory replaced by
	// a non-directory removes the path.
	WasteDeleted WasteKind = "deleted"
	// WasteCopiedUp: a later layer writes the same content again, usually with
	// other metadata (chmod, chown, touch): overlay copies a file up
	// whole to change any attribute.
	WasteCopiedUp WasteKind = "copied-up"
)

// tree is the merged filesystem of some layers.
type tree struct {
	root *node
	// hidden, if set, hears of every node a layer hides: by is the index
	// of that layer; gone is true when no path of the tree shows the
	// node's content any more.
	hidden func(n *node, by int, how WasteKind, gone bool)
}

func newTree() *tree {
	return &tree{root: &node{File: File{Path: "/", Type: TypeDir, Mode: 0o755}, layer: -1, kids: map[string]*node{}}}
}

// lookup finds the node of the relative path rel, or nil.
func (t *tree) lookup(rel string) *node {
	n := t.root
	if rel == "" || rel == "." {
		return n
	}
	for part := range strings.SplitSeq(rel, "/") {
		if n = n.kids[part]; n == nil {
			return nil
		}
	}
	return n
}

// apply lays the entries of layer idx over the tree: whiteouts and opaque
// markers first (they hide what is below the layer, wherever they are in
// the stream: image-spec layer.md, "Whiteouts"), then every other entry.
func (t *tree) apply(idx int, es []entry) {
	for i := range es {
		e := &es[i]
		switch {
		case e.whiteout:
			dir, name := path.Split(e.rel)
			if parent := t.lookup(strings.TrimSuffix(dir, "/")); parent != nil && parent.kids[name] != nil {
				t.drop(parent, name, idx, WasteDeleted)
			}
		case e.opaque:
			if n := t.lookup(e.rel); n != nil && n.isDir() {
				for _, name := range slices.Sorted(maps.Keys(n.kids)) {
					t.drop(n, name, idx, WasteDeleted)
				}
			}
		}
	}
	for i := range es {
		if e := &es[i]; !e.whiteout && !e.opaque && e.rel != "." {
			t.put(idx, e)
		}
	}
}

// put writes the entry e of layer idx into the tree.
func (t *tree) put(idx int, e *entry) {
	dir := t.root
	parts := strings.Split(e.rel, "/")
	for _, p := range parts[:len(parts)-1] {
		k := dir.kids[p]
		if k == nil || !k.isDir() {
			if k != nil {
				t.drop(dir, p, idx, WasteOverwritten)
			}
			k = &node{File: File{Path: path.Join(dir.Path, p), Type: TypeDir, Mode: 0o755}, layer: -1, kids: map[string]*node{}}
			dir.kids[p] = k
		}
		dir = k
	}
	name := parts[len(parts)-1]
	n := &node{File: e.File, layer: idx}
	switch e.Type {
	case TypeDir:
		n.kids = map[string]*node{}
	case TypeFile:
		n.content = &content{size: e.Size, refs: 1, layer: idx, path: e.Path}
	case TypeHardlink:
		if target := t.lookup(strings.TrimPrefix(e.Linkname, "/")); target != nil && target.content != nil {
			n.content = target.content
			n.content.refs++
			n.Size, n.Digest = target.Size, target.Digest
		}
	}
	if old := dir.kids[name]; old != nil {
		switch {
		case old.isDir() && n.isDir():
			n.kids = old.kids // a directory entry changes the directory, not its children
		case old.isDir():
			t.drop(dir, name, idx, WasteDeleted)
		default:
			t.hide(old, idx, replaceKind(old, e))
		}
	}
	dir.kids[name] = n
}

// replaceKind says how entry e hides the non-directory old.
func replaceKind(old *node, e *entry) WasteKind {
	if e.Type == TypeFile && old.content != nil && e.Digest != "" && e.Digest == old.Digest && e.Size == old.Size {
		return WasteCopiedUp
	}
	return WasteOverwritten
}

// drop removes parent's child name and everything below it.
func (t *tree) drop(parent *node, name string, by int, how WasteKind) {
	n := parent.kids[name]
	delete(parent.kids, name)
	t.hideSubtree(n, by, how)
}

func (t *tree) hideSubtree(n *node, by int, how WasteKind) {
	t.hide(n, by, how)
	for _, name := range slices.Sorted(maps.Keys(n.kids)) {
		t.hideSubtree(n.kids[name], by, how)
	}
}

func (t *tree) hide(n *node, by int, how WasteKind) {
	gone := false
	if n.content != nil {
		n.content.refs--
		gone = n.content.refs == 0
	}
	if t.hidden != nil {
		t.hidden(n, by, how, gone)
	}
}

// nodes lists every path of the tree but the root, in lexical order of
// the full path.
func (t *tree) nodes() []*node {
	var out []*node
	var walk func(n *node)
	walk = func(n *node) {
		for _, k := range n.kids {
			out = append(out, k)
			walk(k)
		}
	}
	walk(t.root)
	slices.SortFunc(out, func(a, b *node) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// subtreeBytes is the content bytes of n and everything below it.
func subtreeBytes(n *node) int64 {
	var total int64
	if n.Type == TypeFile {
		total = n.Size
	}
	for _, k := range n.kids {
		total += subtreeBytes(k)
	}
	return total
}

// mergedTree applies layers (entries per layer, bottom up) to a new tree.
func mergedTree(layers [][]entry) *tree {
	t := newTree()
	for i, es := range layers {
		t.apply(i, es)
	}
	return t
}

// differences names the attributes in which a and b differ: "type",
// "mode", "owner", "content", "link", "xattrs". Directories have no
// content; mtimes are never compared.
func differences(a, b *File) []string {
	var out []string
	if a.Type != b.Type {
		out = append(out, "type")
	}
	if a.Mode != b.Mode {
		out = append(out, "mode")
	}
	if a.UID != b.UID || a.GID != b.GID {
		out = append(out, "owner")
	}
	if a.Type != TypeDir && b.Type != TypeDir && (a.Size != b.Size || a.Digest != b.Digest) {
		out = append(out, "content")
	}
	if a.Linkname != b.Linkname {
		out = append(out, "link")
	}
	if !maps.Equal(a.Xattrs, b.Xattrs) {
		out = append(out, "xattrs")
	}
	return out
}
