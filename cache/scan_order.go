package cache

import (
	"slices"
	"strings"
)

// node is what the scan found in one directory.
type node struct {
	self  *File    // the directory's own entry, when selected
	files []File   // its selected non-directory children
	dirs  []string // names of the subdirectories queued from it
}

// assemble emits the listing of a scan in byte-wise path order without sorting
// full paths: a depth-first walk that orders each directory's children
// by name, placing a subdirectory's own entry at "name" and its contents
// at "name/" (so "a" < "a.txt" < "a/x", as a full-path sort would).
func assemble(nodes map[string]*node, n int) []File {
	out := make([]File, 0, n)
	type item struct {
		name  string
		file  *File  // an entry to emit, or
		sub   string // a subdirectory to walk (its key is name + "/")
		slash bool
	}
	var walk func(rel string)
	walk = func(rel string) {
		nd := nodes[rel]
		if nd == nil {
			return
		}
		prefix := 0
		if rel != "" {
			prefix = len(rel) + 1
		}
		items := make([]item, 0, len(nd.files)+2*len(nd.dirs))
		for i := range nd.files {
			items = append(items, item{name: nd.files[i].Path[prefix:], file: &nd.files[i]})
		}
		for _, name := range nd.dirs {
			child := joinRel(rel, name)
			cn := nodes[child]
			if cn == nil {
				continue // vanished
			}
			if cn.self != nil {
				items = append(items, item{name: name, file: cn.self})
			}
			items = append(items, item{name: name, sub: child, slash: true})
		}
		slices.SortFunc(items, func(a, b item) int { return compareKeys(a.name, a.slash, b.name, b.slash) })
		for _, it := range items {
			if it.file != nil {
				out = append(out, *it.file)
			} else {
				walk(it.sub)
			}
		}
	}
	walk("")
	return out
}

// compareKeys compares name+"/" (when slash) or name, for names that
// contain no "/", without building the strings.
func compareKeys(a string, aSlash bool, b string, bSlash bool) int {
	n := min(len(a), len(b))
	if c := strings.Compare(a[:n], b[:n]); c != 0 {
		return c
	}
	switch {
	case len(a) == len(b):
		return boolCompare(aSlash, bSlash) // "a" before "a/"
	case len(a) < len(b):
		if !aSlash {
			return -1
		}
		return strings.Compare("/", b[n:n+1])
	default:
		if !bSlash {
			return 1
		}
		return strings.Compare(a[n:n+1], "/")
	}
}

func boolCompare(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func joinRel(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}
