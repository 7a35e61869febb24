package builder

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// TreeKind says how a source tree is read.
type TreeKind int

// Source tree kinds.
const (
	// ContextTree is a build context (the main one, or a --build-context
	// directory): .dockerignore applies, a source path or symlink leading
	// outside the directory is an error ([ErrUnsafePath]), and copied
	// files are owned by 0:0 unless --chown says otherwise (Docker does
	// not carry the host's owners into the image).
	ContextTree TreeKind = iota
	// RootTree is the root filesystem of a stage or image (COPY --from):
	// symlinks resolve as in a chroot (an absolute target starts at the
	// root, ".." stops there) and owners are kept.
	RootTree
)

// Tree is a directory COPY and ADD read sources from.
type Tree struct {
	Dir  string
	Kind TreeKind
	// Ignore holds .dockerignore patterns (ContextTree only); IgnoreFile
	// names the file they came from.
	Ignore     []string
	IgnoreFile string
}

// LoadContext returns the build context at dir with its ignore patterns:
// "<dockerfile>.dockerignore" next to the Dockerfile if it exists (BuildKit's
// per-Dockerfile override), else "<dir>/.dockerignore". The Dockerfile and
// the ignore file are read directly, so ignoring them only keeps them out
// of COPY, like Docker.
func LoadContext(dir, dockerfile string) (Tree, error) {
	t := Tree{Dir: dir, Kind: ContextTree}
	st, err := os.Stat(dir)
	if err != nil {
		return t, fmt.Errorf("open build context: %w", err)
	}
	if !st.IsDir() {
		return t, fmt.Errorf("open build context %s: not a directory", dir)
	}
	candidates := []string{filepath.Join(dir, ".dockerignore")}
	if dockerfile != "" {
		candidates = append([]string{dockerfile + ".dockerignore"}, candidates...)
	}
	for _, name := range candidates {
		data, err := os.ReadFile(name)
		if isNotExist(err) {
			continue
		}
		if err != nil {
			return t, fmt.Errorf("read ignore file: %w", err)
		}
		patterns, err := ignorefile.ReadAll(bytes.NewReader(data))
		if err != nil {
			return t, fmt.Errorf("parse %s: %w", name, err)
		}
		if _, err := patternmatcher.New(patterns); err != nil {
			return t, fmt.Errorf("parse %s: %w", name, err)
		}
		t.Ignore, t.IgnoreFile = patterns, name
		break
	}
	return t, nil
}

// ignoreMatcher applies a tree's .dockerignore patterns to tree-relative
// slash paths. It is not safe for concurrent use (neither is
// patternmatcher); each operation builds its own.
type ignoreMatcher struct {
	pm *patternmatcher.PatternMatcher
}

func newIgnoreMatcher(t Tree) (*ignoreMatcher, error) {
	if t.Kind != ContextTree || len(t.Ignore) == 0 {
		return &ignoreMatcher{}, nil
	}
	pm, err := patternmatcher.New(t.Ignore)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", t.IgnoreFile, err)
	}
	return &ignoreMatcher{pm: pm}, nil
}

// excluded reports whether rel (tree-relative, slash-separated, "" for the
// root) is excluded, given the match state of its parent; info is the state
// to pass for its children.
func (m *ignoreMatcher) excluded(rel string, parent patternmatcher.MatchInfo) (bool, patternmatcher.MatchInfo, error) {
	if m.pm == nil || rel == "" {
		return false, patternmatcher.MatchInfo{}, nil
	}
	return m.pm.MatchesUsingParentResults(rel, parent)
}

// excludedPath is excluded for a path without known parent state.
func (m *ignoreMatcher) excludedPath(rel string) (bool, error) {
	if m.pm == nil || rel == "" {
		return false, nil
	}
	return m.pm.MatchesOrParentMatches(rel)
}

// descend reports whether an excluded directory must still be walked:
// only when some "!pattern" could re-include something below it.
func (m *ignoreMatcher) descend() bool { return m.pm != nil && m.pm.Exclusions() }

// stateFor computes the match state of rel by matching each of its
// ancestors from the root down, as a walk from the root would.
func (m *ignoreMatcher) stateFor(rel string) (patternmatcher.MatchInfo, error) {
	var info patternmatcher.MatchInfo
	if m.pm == nil || rel == "" {
		return info, nil
	}
	parts := strings.Split(rel, "/")
	for i := range parts {
		var err error
		_, info, err = m.pm.MatchesUsingParentResults(strings.Join(parts[:i+1], "/"), info)
		if err != nil {
			return info, err
		}
	}
	return info, nil
}

func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}
