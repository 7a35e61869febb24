package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// allowed is STYLE.md §2 as data: for each minibuild package, the import
// path prefixes its non-test code may import directly (besides the standard
// library). A prefix ending in "/" allows everything below it; otherwise it
// must match exactly. A new edge needs a row here and a reason in docs/.
var allowed = map[string][]string{
	"minibuild/cache": {
		"github.com/google/go-containerregistry/pkg/v1",
	},
	"minibuild/exec": {
		"golang.org/x/sys/unix",
	},
	"minibuild/layer": {
		"golang.org/x/sys/unix",
		"github.com/klauspost/compress/",
		"github.com/klauspost/pgzip",
		"github.com/google/go-containerregistry/pkg/v1",
	},
	"minibuild/oci": {
		"github.com/google/go-containerregistry/",
		"github.com/opencontainers/image-spec/",
		"github.com/opencontainers/go-digest",
		"golang.org/x/sys/unix",
		"golang.org/x/sync/",
	},
	"minibuild/builder": {
		"minibuild/cache",
		"minibuild/exec",
		"minibuild/layer",
		"minibuild/oci",
		"github.com/moby/buildkit/frontend/dockerfile/parser",
		"github.com/moby/buildkit/frontend/dockerfile/instructions",
		"github.com/moby/buildkit/frontend/dockerfile/shell",
		"github.com/moby/buildkit/frontend/dockerfile/linter",
		"github.com/moby/patternmatcher",
		"github.com/moby/patternmatcher/ignorefile",
		"golang.org/x/sync/",
		"golang.org/x/sys/unix",
		"github.com/google/go-containerregistry/pkg/v1",
		"github.com/google/go-containerregistry/pkg/v1/types",
		"github.com/opencontainers/image-spec/specs-go/v1",
	},
	"minibuild/integration":      {},
	"minibuild/internal/testenv": {},
	"minibuild/cmd/minibuild": {
		"minibuild/",
		"github.com/spf13/cobra",
		"github.com/spf13/pflag",
		"golang.org/x/term",
		"golang.org/x/sys/unix",
		"github.com/google/go-containerregistry/pkg/v1",
	},
}

// leaves must not reach each other, directly or through anything else.
var leaves = []string{"minibuild/cache", "minibuild/exec", "minibuild/layer", "minibuild/oci"}

type goPackage struct {
	ImportPath   string
	Standard     bool
	Imports      []string
	Deps         []string
	TestImports  []string
	XTestImports []string
}

func listPackages(t *testing.T) []goPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "minibuild/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []goPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p goPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// owner maps a package to the row of the table that governs it: a
// subpackage such as minibuild/layer/layertest follows minibuild/layer.
func owner(path string) (string, bool) {
	for p := path; ; {
		if _, ok := allowed[p]; ok {
			return p, true
		}
		i := strings.LastIndex(p, "/")
		if i < 0 {
			return "", false
		}
		p = p[:i]
	}
}

func permitted(rules []string, self, imp string) bool {
	if imp == self || strings.HasPrefix(imp, self+"/") {
		return true // a package's own subpackages
	}
	for _, r := range rules {
		if imp == r || (strings.HasSuffix(r, "/") && strings.HasPrefix(imp, r)) {
			return true
		}
	}
	return false
}

func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".") && first != "minibuild"
}

func TestDependencyDirection(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	for _, p := range listPackages(t) {
		row, ok := owner(p.ImportPath)
		if !ok {
			t.Errorf("package %s has no row in the dependency table", p.ImportPath)
			continue
		}
		for _, imp := range p.Imports {
			if isStd(imp) {
				continue
			}
			if !permitted(allowed[row], row, imp) {
				t.Errorf("%s imports %s: edge not in the dependency table", p.ImportPath, imp)
			}
		}
		// Tests may use their own package's helpers, internal/testenv and go-cmp.
		for _, imp := range append(p.TestImports, p.XTestImports...) {
			if isStd(imp) || imp == "minibuild/internal/testenv" || strings.HasPrefix(imp, "github.com/google/go-cmp/") {
				continue
			}
			if !permitted(allowed[row], row, imp) {
				t.Errorf("tests of %s import %s: edge not in the dependency table", p.ImportPath, imp)
			}
		}
	}
}

func TestLeavesStayLeaves(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	for _, p := range listPackages(t) {
		row, _ := owner(p.ImportPath)
		for _, leaf := range leaves {
			if row != leaf {
				continue
			}
			for _, d := range p.Deps {
				if strings.HasPrefix(d, "minibuild/") && d != "minibuild/internal/testenv" {
					if r, _ := owner(d); r != leaf {
						t.Errorf("leaf %s depends on %s", p.ImportPath, d)
					}
				}
			}
		}
	}
}
