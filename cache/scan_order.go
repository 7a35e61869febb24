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
	var order []int32 // reused: one directory's children, sorted
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
		// Item i < nf is files[i]; nf+2k is subdirectory k's own entry
		// and nf+2k+1 its contents (key "name/").
		nf := len(nd.files)
		item := func(i int32) (name string, slash bool) {
			if int(i) < nf {
				return nd.files[i].Path[prefix:], false
			}
			k := (int(i) - nf) / 2
			return nd.dirs[k], (int(i)-nf)%2 == 1
		}
		start := len(order)
		for i := range nf {
			order = append(order, int32(i))
		}
		for k, name := range nd.dirs {
			cn := nodes[joinRel(rel, name)]
			if cn == nil {
				continue // vanished
			}
			if cn.self != nil {
				order = append(order, int32(nf+2*k))
			}
			order = append(order, int32(nf+2*k+1))
		}
		mine := order[start:]
		slices.SortFunc(mine, func(a, b int32) int {
			an, as := item(a)
			bn, bs := item(b)
			return compareKeys(an, as, bn, bs)
		})
		for j := start; j < len(order); j++ {
			i := order[j]
			switch name, slash := item(i); {
			case int(i) < nf:
				out = append(out, nd.files[i])
			case !slash:
				out = append(out, *nodes[joinRel(rel, name)].self)
			default:
				walk(joinRel(rel, name))
			}
		}
		order = order[:start]
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
