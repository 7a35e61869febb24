package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/patternmatcher"

	"minibuild/cache"
)

// contextScans lists the build contexts a build reads (the main one and
// --build-context directories), each once, through its stat cache, and
// keeps the listings of the COPY inputs it keyed so that key material and
// explanations can show them.
type contextScans struct {
	b  *Builder
	ev *emitter

	mu       sync.Mutex
	byDir    map[string][]cache.File // by treeID
	stats    []*cache.StatCache
	listings map[v1.Hash][]cache.File // inputs keyed by this build
}

var _ cache.ListingSource = (*contextScans)(nil)

func newContextScans(b *Builder, ev *emitter) *contextScans {
	return &contextScans{b: b, ev: ev, byDir: map[string][]cache.File{}, listings: map[v1.Hash][]cache.File{}}
}

// files is the listing of tree (after its .dockerignore), scanned on first
// use.
func (c *contextScans) files(ctx context.Context, t Tree) ([]cache.File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if files, ok := c.byDir[treeID(t)]; ok {
		return files, nil
	}
	v := c.ev.internal("[internal] load build context")
	files, err := c.scan(ctx, t)
	if err == nil {
		v.status(fmt.Sprintf("%d entries", len(files)))
	}
	v.finish(err)
	if err != nil {
		return nil, err
	}
	c.byDir[treeID(t)] = files
	return files, nil
}

// treeID tells trees apart: one directory may be read with two ignore
// files (the main context's <Dockerfile>.dockerignore, and its own
// .dockerignore as a --build-context).
func treeID(t Tree) string { return t.Dir + "\x00" + t.IgnoreFile }

func (c *contextScans) scan(ctx context.Context, t Tree) ([]cache.File, error) {
	sc, err := c.statCache(t.Dir)
	if err != nil {
		return nil, err
	}
	sel, err := selectFunc(t)
	if err != nil {
		return nil, err
	}
	files, err := cache.Scan(ctx, t.Dir, cache.ScanOptions{Select: sel, Cache: sc})
	if err != nil {
		return nil, fmt.Errorf("read build context: %w", err)
	}
	c.stats = append(c.stats, sc)
	return files, nil
}

// statCache loads the stat cache of a context directory.
func (c *contextScans) statCache(dir string) (*cache.StatCache, error) {
	if c.b.statDir == "" {
		return c.b.cache.StatCache(dir)
	}
	sum := sha256.Sum256([]byte(filepath.Clean(dir)))
	return cache.LoadStatCache(filepath.Join(c.b.statDir, hex.EncodeToString(sum[:16])), cache.WithLogger(c.b.log))
}

// save writes back the stat caches (each only if it learned something).
func (c *contextScans) save() {
	c.mu.Lock()
	stats := c.stats
	c.stats = nil
	c.mu.Unlock()
	for _, sc := range stats {
		if err := sc.Save(); err != nil {
			c.b.log.Warn("save stat cache", "err", err)
		}
	}
}

// put records a selected listing and returns its digest; with store it is
// also stored in the cache (content-addressed; a no-op when it is there).
func (c *contextScans) put(files []cache.File, store bool) (v1.Hash, error) {
	var id v1.Hash
	var err error
	if store {
		id, err = c.b.cache.PutFiles(files) // digests them too
	} else {
		id = cache.Digest(files)
	}
	if err != nil {
		return id, err
	}
	c.mu.Lock()
	c.listings[id] = files
	c.mu.Unlock()
	return id, nil
}

// Files implements cache.ListingSource: this build's listings first, then
// the store's.
func (c *contextScans) Files(id v1.Hash) ([]cache.File, bool, error) {
	c.mu.Lock()
	files, ok := c.listings[id]
	c.mu.Unlock()
	if ok {
		return files, true, nil
	}
	return c.b.cache.Files(id)
}

// selectFunc is the .dockerignore of t as a cache.ScanOptions.Select:
// an excluded directory is still entered when a "!" pattern could
// re-include something below it.
//
// Scan calls Select for a directory before any entry below it, from
// several goroutines, so each directory's match state is remembered and
// its entries are matched against their own path only (patternmatcher's
// MatchesUsingParentResults), not against every ancestor again. Matchers
// are pooled: patternmatcher is not safe for concurrent use.
func selectFunc(t Tree) (func(rel string, isDir bool) (bool, bool), error) {
	if t.Kind != ContextTree || len(t.Ignore) == 0 {
		return nil, nil
	}
	first, err := patternmatcher.New(t.Ignore)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", t.IgnoreFile, err)
	}
	exclusions := first.Exclusions()
	pool := sync.Pool{New: func() any {
		pm, _ := patternmatcher.New(t.Ignore) // parsed once already
		return pm
	}}
	pool.Put(first)
	suffixes := literalSuffixes(first)
	var dirs sync.Map // directory → patternmatcher.MatchInfo
	return func(rel string, isDir bool) (bool, bool) {
		if !isDir && cannotMatch(rel, suffixes) {
			return true, false
		}
		var parent patternmatcher.MatchInfo
		if i := strings.LastIndexByte(rel, '/'); i > 0 {
			if info, ok := dirs.Load(rel[:i]); ok {
				parent = info.(patternmatcher.MatchInfo)
			}
		}
		pm := pool.Get().(*patternmatcher.PatternMatcher)
		excluded, info, err := pm.MatchesUsingParentResults(rel, parent)
		pool.Put(pm)
		if err != nil {
			return true, isDir // list it: a key may cover too much, never too little
		}
		if isDir {
			dirs.Store(rel, info)
		}
		if !excluded {
			return true, isDir
		}
		return false, isDir && exclusions
	}, nil
}

// literalSuffixes returns, for .dockerignore patterns without "!"
// exclusions, the literal text each pattern ends with (".tmp" for
// "**/*.tmp"); nil when a cheap test cannot be derived. Without
// exclusions a matched directory is not entered, so a file is selected
// exactly when no pattern matches its whole path, and a path that ends
// with none of the suffixes matches no pattern. Most entries are decided
// by that test, without a regular expression.
func literalSuffixes(pm *patternmatcher.PatternMatcher) []string {
	if pm.Exclusions() {
		return nil
	}
	var out []string
	for _, p := range pm.Patterns() {
		text := p.String()
		i := strings.LastIndexAny(text, "*?[]\\")
		if strings.Contains(text, "\\") || i == len(text)-1 {
			return nil // escapes, or a wildcard at the end: no usable suffix
		}
		out = append(out, text[i+1:])
	}
	return out
}

// cannotMatch reports whether rel ends with none of suffixes (false when
// there are none to test).
func cannotMatch(rel string, suffixes []string) bool {
	if suffixes == nil {
		return false
	}
	for _, s := range suffixes {
		if strings.HasSuffix(rel, s) {
			return false
		}
	}
	return true
}
