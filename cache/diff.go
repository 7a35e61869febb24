package cache

import (
	"maps"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ChangeKind names one way an input file changed.
type ChangeKind string

// Change kinds reported by [DiffFiles].
const (
	ChangeAdded   ChangeKind = "added"
	ChangeRemoved ChangeKind = "removed"
	ChangeRenamed ChangeKind = "renamed" // same content, new path; From is the old path
	ChangeContent ChangeKind = "content"
	ChangeMode    ChangeKind = "mode"
	ChangeType    ChangeKind = "type"
	ChangeTarget  ChangeKind = "symlink target"
	ChangeDevice  ChangeKind = "device"
	ChangeXattrs  ChangeKind = "xattrs"
)

// FileChange is one path whose keyed metadata or content differs.
type FileChange struct {
	Path  string       `json:"path"`
	Kinds []ChangeKind `json:"kinds"`
	From  string       `json:"from,omitempty"` // ChangeRenamed: the old path
}

// String is "path (kind, kind)", or "from → path (renamed)".
func (c FileChange) String() string {
	kinds := make([]string, len(c.Kinds))
	for i, k := range c.Kinds {
		kinds[i] = string(k)
	}
	p := c.Path
	if c.From != "" {
		p = c.From + " → " + c.Path
	}
	return p + " (" + strings.Join(kinds, ", ") + ")"
}

// DiffFiles compares two listings by path and returns the changes in path
// order. A removed and an added regular file with the same non-empty
// content become one rename when that content digest is unique among the
// removed and among the added files (an ambiguous match, or empty files,
// stay as removed + added). A rename may also carry mode or xattrs kinds.
func DiffFiles(old, cur []File) []FileChange {
	old, cur = sortedFiles(old), sortedFiles(cur)
	var changes []FileChange
	i, j := 0, 0
	for i < len(old) || j < len(cur) {
		switch {
		case j == len(cur) || (i < len(old) && old[i].Path < cur[j].Path):
			changes = append(changes, FileChange{Path: old[i].Path, Kinds: []ChangeKind{ChangeRemoved}})
			i++
		case i == len(old) || cur[j].Path < old[i].Path:
			changes = append(changes, FileChange{Path: cur[j].Path, Kinds: []ChangeKind{ChangeAdded}})
			j++
		default:
			if kinds := fileKinds(&old[i], &cur[j]); kinds != nil {
				changes = append(changes, FileChange{Path: cur[j].Path, Kinds: kinds})
			}
			i++
			j++
		}
	}
	return pairRenames(changes, old, cur)
}

// fileKinds lists how two entries at the same path differ.
func fileKinds(a, b *File) []ChangeKind {
	if a.Type != b.Type {
		return []ChangeKind{ChangeType}
	}
	var kinds []ChangeKind
	if a.Size != b.Size || a.Digest != b.Digest {
		kinds = append(kinds, ChangeContent)
	}
	if a.Linkname != b.Linkname {
		kinds = append(kinds, ChangeTarget)
	}
	if a.Rdev != b.Rdev {
		kinds = append(kinds, ChangeDevice)
	}
	if a.Mode != b.Mode {
		kinds = append(kinds, ChangeMode)
	}
	if !maps.Equal(a.Xattrs, b.Xattrs) {
		kinds = append(kinds, ChangeXattrs)
	}
	return kinds
}

// pairRenames folds unique (removed, added) pairs of equal non-empty
// content into renames, reported at the new path.
func pairRenames(changes []FileChange, old, cur []File) []FileChange {
	byPath := func(files []File, p string) *File {
		i, _ := slices.BinarySearchFunc(files, p, pathCmp)
		return &files[i]
	}
	type cand struct {
		idx   int // index in changes
		count int
	}
	removed := map[v1.Hash]*cand{}
	added := map[v1.Hash]*cand{}
	for i, c := range changes {
		var f *File
		var m map[v1.Hash]*cand
		switch c.Kinds[0] {
		case ChangeRemoved:
			f, m = byPath(old, c.Path), removed
		case ChangeAdded:
			f, m = byPath(cur, c.Path), added
		default:
			continue
		}
		if f.Type != TypeFile || f.Size == 0 {
			continue
		}
		if m[f.Digest] == nil {
			m[f.Digest] = &cand{idx: i}
		}
		m[f.Digest].count++
	}
	drop := map[int]bool{}
	for d, a := range added {
		r := removed[d]
		if r == nil || r.count != 1 || a.count != 1 {
			continue
		}
		from, to := byPath(old, changes[r.idx].Path), byPath(cur, changes[a.idx].Path)
		kinds := []ChangeKind{ChangeRenamed}
		if from.Mode != to.Mode {
			kinds = append(kinds, ChangeMode)
		}
		if !maps.Equal(from.Xattrs, to.Xattrs) {
			kinds = append(kinds, ChangeXattrs)
		}
		changes[a.idx] = FileChange{Path: to.Path, Kinds: kinds, From: from.Path}
		drop[r.idx] = true
	}
	if len(drop) == 0 {
		return changes
	}
	out := changes[:0]
	for i, c := range changes {
		if !drop[i] {
			out = append(out, c)
		}
	}
	return out
}
