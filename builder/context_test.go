package builder

import (
	"testing"

	"github.com/moby/patternmatcher"
)

// TestSelectFunc checks the scan's .dockerignore selection against
// patternmatcher's own answer for every path it reaches.
func TestSelectFunc(t *testing.T) {
	t.Parallel()
	paths := []struct {
		rel string
		dir bool
	}{
		{"a", true}, {"a/x.tmp", false}, {"a/y.txt", false}, {"a/b", true}, {"a/b/z.tmp", false},
		{"a/b/keep.tmp", false}, {"gen.sh", false}, {"agen.sh", false}, {"sub", true}, {"sub/gen.sh", false},
		{"node_modules", true}, {"node_modules/m.js", false}, {"x.md", false}, {"README.md", false},
	}
	for _, ignore := range [][]string{
		{"**/*.tmp", "gen.sh"},
		{"*.md", "!README.md"},
		{"**/*.tmp", "!**/keep.tmp"},
		{"node_modules", "sub/*"},
		{"a/b", "*.sh"},
		{"**"},
	} {
		sel, err := selectFunc(Tree{Kind: ContextTree, Ignore: ignore})
		if err != nil {
			t.Fatal(err)
		}
		pm, err := patternmatcher.New(ignore)
		if err != nil {
			t.Fatal(err)
		}
		entered := map[string]bool{"": true}
		for _, p := range paths {
			parent := ""
			if i := lastSlash(p.rel); i > 0 {
				parent = p.rel[:i]
			}
			if !entered[parent] {
				continue // the scan does not get there
			}
			include, descend := sel(p.rel, p.dir)
			excluded, err := pm.MatchesOrParentMatches(p.rel)
			if err != nil {
				t.Fatal(err)
			}
			if include == excluded {
				t.Errorf("%q: Select(%q) include = %v, patternmatcher excluded = %v", ignore, p.rel, include, excluded)
			}
			if p.dir && descend {
				entered[p.rel] = true
			}
		}
	}
}

func lastSlash(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return i
		}
	}
	return -1
}
