package builder

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"minibuild/cache"
)

// manifestRule is one dependency installer whose RUN needs only a few
// manifest files of the project, not its sources.
type manifestRule struct {
	run       *regexp.Regexp // matches the RUN's command
	manifests []string       // the files it reads (the first must exist)
}

// manifestRules are the classic cases of the cache-order lint.
var manifestRules = []manifestRule{
	{regexp.MustCompile(`\bnpm (ci|install|i)\b`), []string{"package.json", "package-lock.json"}},
	{regexp.MustCompile(`\byarn( install)?\b`), []string{"package.json", "yarn.lock"}},
	{regexp.MustCompile(`\bpnpm (install|i)\b`), []string{"package.json", "pnpm-lock.yaml"}},
	{regexp.MustCompile(`\bpip3? install\b.*-r\s*\S*requirements[^ ]*\.txt`), []string{"requirements.txt"}},
	{regexp.MustCompile(`\bgo mod download\b`), []string{"go.mod", "go.sum"}},
	{regexp.MustCompile(`\bbundle install\b`), []string{"Gemfile", "Gemfile.lock"}},
	{regexp.MustCompile(`\bmvn\b.*dependency:(go-offline|resolve)`), []string{"pom.xml"}},
	{regexp.MustCompile(`\bcargo fetch\b`), []string{"Cargo.toml", "Cargo.lock"}},
	{regexp.MustCompile(`\bcomposer install\b`), []string{"composer.json", "composer.lock"}},
}

// lint warns about the classic cache-ordering mistake: a COPY of the whole
// build context before a RUN that only needs a dependency manifest
// (package.json, go.mod, …). Every source edit then invalidates the
// dependency download. Only rules whose manifest is in the context count.
func (bd *build) lint() {
	for _, st := range bd.order {
		var whole *Step // the first COPY of the whole context so far
		copied := map[string]bool{}
		for _, step := range st.stage.Steps {
			if op := step.Copy; op != nil && op.From.Kind == FromContext {
				if whole == nil && copiesWholeContext(op) {
					whole = step
				}
				for _, src := range op.Sources {
					copied[path.Base(path.Clean("/"+src))] = true
				}
				continue
			}
			if step.Run == nil || whole == nil {
				continue
			}
			if w, ok := bd.orderWarning(whole, step, copied); ok {
				bd.plan.Warnings = append(bd.plan.Warnings, w)
				whole = nil // one warning per whole-context COPY
			}
		}
	}
}

// copiesWholeContext reports a COPY/ADD of ".", "./" or "*".
func copiesWholeContext(op *CopyOp) bool {
	return slices.ContainsFunc(op.Sources, func(s string) bool {
		s = strings.TrimPrefix(s, "./")
		return s == "" || s == "." || s == "*"
	})
}

// orderWarning checks one RUN after a whole-context COPY.
func (bd *build) orderWarning(whole, run *Step, copied map[string]bool) (Warning, bool) {
	cmd := strings.Join(run.Run.Args, " ")
	for _, r := range manifestRules {
		if !r.run.MatchString(cmd) || copied[r.manifests[0]] || !bd.inContext(r.manifests[0]) {
			continue
		}
		var present []string
		for _, m := range r.manifests {
			if bd.inContext(m) {
				present = append(present, m)
			}
		}
		msg := fmt.Sprintf("cache order: line %d copies the whole build context before this RUN, which only needs %s: every source change re-runs it. "+
			"Copy %s first, RUN, then COPY the rest", whole.Location.Start, strings.Join(present, " and "), strings.Join(present, " "))
		return Warning{Location: run.Location, Message: msg}, true
	}
	return Warning{}, false
}

// inContext reports whether the main build context lists name at its root.
func (bd *build) inContext(name string) bool {
	bd.contexts.mu.Lock()
	files := bd.contexts.byDir[treeID(bd.plan.Context)]
	bd.contexts.mu.Unlock()
	return len(cache.Subtrees(files, name)) > 0
}
