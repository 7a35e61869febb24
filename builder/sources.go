package builder

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Source is one COPY/ADD source after globbing and symlink resolution.
type Source struct {
	// Name is the source as the Dockerfile or the glob names it
	// (tree-relative, slash-separated, "" for the root). Its base name
	// is the file name used when a file is copied into a directory.
	Name string
	// Path is where Name leads after following symlinks: tree-relative,
	// with no symlink in it ("" for the root).
	Path string
	// Dir reports whether Path is a directory (its contents are copied).
	Dir bool
	// Include is set for COPY --parents: a pattern, relative to Path, of
	// the entries to copy with their parent directories.
	Include string
	// Arg is the index in CopyOp.Sources of the argument that selected it.
	Arg int
}

// maxSymlinks bounds symlink resolution, like the kernel's ELOOP limit.
const maxSymlinks = 40

// Sources selects the local sources of op in t: wildcards expanded
// (filepath.Match per path component, like BuildKit), symlinks in the
// source path followed (scoped to t), .dockerignore applied. URL sources
// and heredocs are not included. A missing source is an error wrapping
// [ErrNotFound]; a path leading out of a build context wraps
// [ErrUnsafePath]; a COPY that selects nothing at all (every glob empty,
// or a context whose every file is ignored) wraps [ErrNoSources].
func Sources(t Tree, op *CopyOp) ([]Source, error) {
	r, err := newResolver(t)
	if err != nil {
		return nil, err
	}
	var out []Source
	selected := len(op.Heredocs) > 0
	for i, raw := range op.Sources {
		if op.Add && isURL(raw) {
			selected = true
			continue
		}
		srcs, err := r.sources(raw, op.Parents)
		if err != nil {
			return nil, err
		}
		for j := range srcs {
			srcs[j].Arg = i
			if srcs[j].Path != "" || !r.rootEmptied() {
				selected = true
			}
		}
		out = append(out, srcs...)
	}
	if !selected {
		return nil, r.noSources(op.Sources)
	}
	return out, nil
}

type resolver struct {
	t      Tree
	ignore *ignoreMatcher
}

func newResolver(t Tree) (*resolver, error) {
	m, err := newIgnoreMatcher(t)
	if err != nil {
		return nil, err
	}
	return &resolver{t: t, ignore: m}, nil
}

// sources resolves one source argument.
func (r *resolver) sources(raw string, parents bool) ([]Source, error) {
	if parents {
		return r.parentsSource(raw)
	}
	rel, err := r.clean(raw)
	if err != nil {
		return nil, err
	}
	return r.expand(rel, raw)
}

// expand resolves a clean relative path, globbing its wildcard part.
func (r *resolver) expand(rel, raw string) ([]Source, error) {
	base, pattern := splitWildcards(rel)
	if pattern == "" {
		s, err := r.resolve(rel, raw)
		if err != nil {
			return nil, err
		}
		return []Source{s}, nil
	}
	baseSrc, err := r.resolve(base, raw)
	if err != nil {
		return nil, err
	}
	var out []Source
	for _, name := range r.glob(baseSrc.Path, base, strings.Split(pattern, "/")) {
		s, err := r.resolve(name, name)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// parentsSource handles COPY --parents like BuildKit: "a/./b/**/*.txt"
// copies what matches b/**/*.txt below each directory matching a, keeping
// the path below the "/./" pivot (the whole path when there is none).
// The pattern is a .dockerignore-style pattern ("**" spans directories).
func (r *resolver) parentsSource(raw string) ([]Source, error) {
	pivot, pattern, ok := strings.Cut(raw, "/./")
	if !ok {
		pivot, pattern = "", raw
	}
	rel, err := r.clean(pivot)
	if err != nil {
		return nil, err
	}
	pat, err := r.clean(pattern)
	if err != nil {
		return nil, err
	}
	if !containsWildcards(pivot) && !containsWildcards(pattern) {
		// A literal path must exist.
		if _, err := r.resolve(path.Join(rel, pat), raw); err != nil {
			return nil, err
		}
	}
	pivots, err := r.expand(rel, raw)
	if err != nil {
		return nil, err
	}
	for i := range pivots {
		pivots[i].Include = pat
	}
	return pivots, nil
}

// clean makes raw tree-relative ("" for the root). In a build context a
// path climbing above the root is an error; in a root filesystem ".."
// stops at "/" (BuildKit cleans both; refusing is safer for contexts).
func (r *resolver) clean(raw string) (string, error) {
	rel := path.Clean(strings.TrimLeft(filepath.ToSlash(raw), "/"))
	if rel == "." {
		return "", nil
	}
	if rel == ".." || strings.HasPrefix(rel, "../") {
		if r.t.Kind == ContextTree {
			return "", fmt.Errorf("source %q: outside the build context: %w", raw, ErrUnsafePath)
		}
		rel = strings.TrimLeft(path.Clean("/"+rel), "/")
	}
	return rel, nil
}

// resolve follows rel component by component, symlinks included (the
// last one too), and checks that what it reaches is visible.
func (r *resolver) resolve(rel, name string) (Source, error) {
	phys, fi, err := r.follow(rel, name)
	if err != nil {
		return Source{}, err
	}
	visible, err := r.visible(phys, fi.IsDir())
	if err != nil {
		return Source{}, err
	}
	if !visible {
		return Source{}, r.notFound(name)
	}
	return Source{Name: rel, Path: phys, Dir: fi.IsDir()}, nil
}

// follow resolves rel inside the tree. It returns the physical
// tree-relative path and its Lstat info.
func (r *resolver) follow(rel, name string) (string, fs.FileInfo, error) {
	todo := splitPath(rel)
	var done []string
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		if c == ".." {
			if len(done) == 0 {
				if r.t.Kind == ContextTree {
					return "", nil, fmt.Errorf("source %q: symlink leads outside the build context: %w", name, ErrUnsafePath)
				}
				continue
			}
			done = done[:len(done)-1]
			continue
		}
		cur := path.Join(append(done, c)...)
		if hidden, err := r.hiddenParent(cur, len(todo) > 0); err != nil || hidden {
			if err == nil {
				err = r.notFound(name)
			}
			return "", nil, err
		}
		fi, err := os.Lstat(r.host(cur))
		if err != nil {
			if isNotExist(err) {
				return "", nil, r.notFound(name)
			}
			return "", nil, fmt.Errorf("source %q: %w", name, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, c)
			continue
		}
		if links++; links > maxSymlinks {
			return "", nil, fmt.Errorf("source %q: too many levels of symbolic links", name)
		}
		target, err := os.Readlink(r.host(cur))
		if err != nil {
			return "", nil, fmt.Errorf("source %q: %w", name, err)
		}
		if strings.HasPrefix(target, "/") {
			if target, err = r.absoluteTarget(target, name); err != nil {
				return "", nil, err
			}
			done = nil
		}
		todo = append(splitPath(target), todo...)
	}
	phys := path.Join(done...)
	fi, err := os.Lstat(r.host(phys))
	if err != nil {
		return "", nil, fmt.Errorf("source %q: %w", name, err)
	}
	return phys, fi, nil
}

// absoluteTarget maps an absolute symlink target into the tree: in a root
// filesystem it starts at the root; in a build context only a target
// inside the context directory itself is allowed.
func (r *resolver) absoluteTarget(target, name string) (string, error) {
	if r.t.Kind == RootTree {
		return target, nil
	}
	dir := filepath.Clean(r.t.Dir)
	if rel, ok := strings.CutPrefix(filepath.Clean(target), dir); ok && (rel == "" || strings.HasPrefix(rel, "/")) {
		return rel, nil
	}
	return "", fmt.Errorf("source %q: symlink to %s leads outside the build context: %w", name, target, ErrUnsafePath)
}

// hiddenParent reports whether the intermediate component cur is excluded
// by .dockerignore with nothing below it re-included: walking through it
// is then impossible, as in a transferred context.
func (r *resolver) hiddenParent(cur string, intermediate bool) (bool, error) {
	if !intermediate {
		return false, nil
	}
	ex, err := r.ignore.excludedPath(cur)
	if err != nil || !ex {
		return false, err
	}
	return !r.ignore.descend(), nil
}

// visible reports whether phys exists in the tree as .dockerignore leaves
// it: not excluded, or an excluded directory with a re-included entry.
func (r *resolver) visible(phys string, dir bool) (bool, error) {
	ex, err := r.ignore.excludedPath(phys)
	if err != nil || !ex {
		return !ex, err
	}
	if !dir || !r.ignore.descend() {
		return false, nil
	}
	return r.hasVisibleEntries(phys), nil
}

// hasVisibleEntries reports whether directory dir has an entry
// .dockerignore does not hide (at any depth).
func (r *resolver) hasVisibleEntries(dir string) bool {
	entries, err := os.ReadDir(r.host(dir))
	if err != nil {
		return false
	}
	for _, e := range entries {
		rel := path.Join(dir, e.Name())
		if ok, _ := r.visible(rel, e.IsDir()); ok {
			return true
		}
	}
	return false
}

// glob matches the pattern components below base (physical path basePhys,
// named baseName) like filepath.Walk + filepath.Match in BuildKit:
// directories are entered, symlinks to directories are not, and the
// results come in lexical order.
func (r *resolver) glob(basePhys, baseName string, pattern []string) []string {
	entries, err := os.ReadDir(r.host(basePhys))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		phys := path.Join(basePhys, e.Name())
		name := path.Join(baseName, e.Name())
		if ok, _ := filepath.Match(pattern[0], e.Name()); !ok {
			continue
		}
		if ok, _ := r.visible(phys, e.IsDir()); !ok {
			continue
		}
		if len(pattern) == 1 {
			out = append(out, name)
		} else if e.IsDir() {
			out = append(out, r.glob(phys, name, pattern[1:])...)
		}
	}
	return out
}

func (r *resolver) host(rel string) string {
	if rel == "" {
		return r.t.Dir
	}
	return r.t.Dir + "/" + rel
}

func (r *resolver) notFound(name string) error {
	if r.t.Kind == ContextTree {
		if len(r.t.Ignore) > 0 {
			return fmt.Errorf("source %q: not in the build context or excluded by %s: %w", name, filepath.Base(r.t.IgnoreFile), ErrNotFound)
		}
		return fmt.Errorf("source %q: not in the build context: %w", name, ErrNotFound)
	}
	return fmt.Errorf("source %q: %w", name, ErrNotFound)
}

// rootEmptied reports a build context whose every entry .dockerignore
// hides: copying its root selects nothing.
func (r *resolver) rootEmptied() bool {
	return r.t.Kind == ContextTree && len(r.t.Ignore) > 0 && !r.hasVisibleEntries("")
}

func (r *resolver) noSources(names []string) error {
	list := strings.Join(quoteArgs(names), " ")
	if r.t.Kind == ContextTree && len(r.t.Ignore) > 0 {
		return fmt.Errorf("%w: nothing %s selects is left by %s", ErrNoSources, list, filepath.Base(r.t.IgnoreFile))
	}
	return fmt.Errorf("%w: nothing matches %s", ErrNoSources, list)
}

// splitWildcards splits a clean relative path at the first component with
// a wildcard: the literal prefix and the pattern rest (BuildKit's fsutil).
func splitWildcards(rel string) (base, pattern string) {
	parts := splitPath(rel)
	for i, p := range parts {
		if containsWildcards(p) {
			return path.Join(parts[:i]...), strings.Join(parts[i:], "/")
		}
	}
	return rel, ""
}

// containsWildcards reports an unescaped *, ? or [.
func containsWildcards(name string) bool {
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '\\':
			i++
		case '*', '?', '[':
			return true
		}
	}
	return false
}

func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}
