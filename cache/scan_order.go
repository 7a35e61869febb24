package cache

import (
	"slices"
	"strings"
)

// order fixes the listing's order once every directory is listed: a
// depth-first walk that orders each directory's children by name,
// placing a subdirectory's own entry at "name" and its contents at
// "name/" (so "a" < "a.txt" < "a/x", as a full-path sort would), without
// sorting full paths. It gives every non-directory its slot (kid.pos)
// and returns the listing with the directories' own entries in place;
// the second pass fills the other slots.
func (s *scanner) order() []File {
	type self struct {
		f   *File
		pos int32
	}
	var selves []self
	var n int32
	var idx []int32 // reused: one directory's children, sorted
	var walk func(nd *node)
	walk = func(nd *node) {
		prefix := 0
		if nd.rel != "" {
			prefix = len(nd.rel) + 1
		}
		// Item 2i is kid i (a non-directory, or a subdirectory's own
		// entry); 2i+1 a subdirectory's contents (key "name/").
		start := len(idx)
		for i := range nd.kids {
			k := &nd.kids[i]
			if !k.dir {
				idx = append(idx, int32(2*i))
				continue
			}
			sub := s.nodes[k.path]
			if sub == nil || sub.gone {
				continue // vanished
			}
			if sub.self != nil {
				idx = append(idx, int32(2*i))
			}
			if sub.descend {
				idx = append(idx, int32(2*i+1))
			}
		}
		slices.SortFunc(idx[start:], func(a, b int32) int {
			return compareKeys(nd.kids[a/2].path[prefix:], a%2 == 1, nd.kids[b/2].path[prefix:], b%2 == 1)
		})
		for j := start; j < len(idx); j++ {
			k := &nd.kids[idx[j]/2]
			switch {
			case !k.dir:
				k.pos = n
				n++
			case idx[j]%2 == 0:
				selves = append(selves, self{s.nodes[k.path].self, n})
				n++
			default:
				walk(s.nodes[k.path])
			}
		}
		idx = idx[:start]
	}
	walk(s.nodes[""])
	out := make([]File, n)
	for _, d := range selves {
		out[d.pos] = *d.f
	}
	return out
}

// compact drops the holes (Type "") that vanished entries and sockets
// left in a listing.
func compact(files []File) []File {
	return slices.DeleteFunc(files, func(f File) bool { return f.Type == "" })
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
