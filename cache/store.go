package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Store is the step cache of one minibuild store: records, input listings,
// build logs and stat caches under one directory (`<root>/cache`):
//
//	records/<xx>/<hex>.json  step records by key
//	files/<xx>/<hex>         input listings by their [Digest]
//	builds/<id>.json         the last build log per [BuildID]
//	stat/<hex>               stat caches per context directory
//	tmp/                     temp files of writes in progress
//
// A Store is safe for concurrent use by goroutines and by processes
// sharing the directory: every write is an atomic rename of a complete,
// fsynced file, and every file is valid on its own.
type Store struct {
	dir string
	log *slog.Logger
}

var _ ListingSource = (*Store)(nil)

// Option configures [Open] and [LoadStatCache].
type Option func(*options)

type options struct {
	log *slog.Logger
}

// WithLogger reports recoverable problems (a corrupt record read as a
// miss, a stat cache that could not be read) to l. Default: silent.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

func makeOptions(opts []Option) options {
	o := options{log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// staleTemp is how old a temp file must be before Open removes it: older
// than any write in progress could be.
const staleTemp = time.Hour

// touchEvery bounds how often [Store.Get] rewrites a record's last-use
// time: LRU pruning needs no finer grain, and a no-op build then writes
// no metadata.
const touchEvery = time.Minute

// Open opens (creating if needed) the cache directory dir and removes
// temp files left by crashed writers.
func Open(dir string, opts ...Option) (*Store, error) {
	o := makeOptions(opts)
	s := &Store{dir: dir, log: o.log}
	for _, sub := range []string{"", "records", "files", "builds", "stat", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("open cache %s: %w", dir, err)
		}
	}
	s.removeStaleTemp()
	return s, nil
}

// Dir is the directory the store lives in.
func (s *Store) Dir() string { return s.dir }

func (s *Store) tmpDir() string { return filepath.Join(s.dir, "tmp") }

func (s *Store) removeStaleTemp() {
	entries, err := os.ReadDir(s.tmpDir())
	if err != nil {
		s.log.Warn("list cache temp files", "dir", s.tmpDir(), "err", err)
		return
	}
	for _, e := range entries {
		info, err := e.Info()
		if err == nil && time.Since(info.ModTime()) > staleTemp {
			_ = os.Remove(filepath.Join(s.tmpDir(), e.Name()))
		}
	}
}

// StatCache loads the stat cache kept for the build context directory
// contextDir (an absolute path), with the store's logger. See
// [LoadStatCache].
func (s *Store) StatCache(contextDir string) (*StatCache, error) {
	id := sha256Hash([]byte(filepath.Clean(contextDir))).Hex[:32]
	c, err := LoadStatCache(filepath.Join(s.dir, "stat", id), WithLogger(s.log))
	if c != nil {
		c.tmpDir = s.tmpDir() // cleaned at Open, unlike stat/
	}
	return c, err
}

// shardPath is dir/<first two hex>/<hex><ext> for a sha256 hash.
func (s *Store) shardPath(kind string, h v1.Hash, ext string) (string, error) {
	if h.Algorithm != "sha256" || len(h.Hex) != 64 {
		return "", fmt.Errorf("cache %s key %q: not a sha256 digest", kind, h)
	}
	return filepath.Join(s.dir, kind, h.Hex[:2], h.Hex+ext), nil
}

// LayerRef is the layer a step produced, as the image manifest names it.
type LayerRef struct {
	MediaType        string  `json:"mediaType"`
	Digest           v1.Hash `json:"digest,omitzero"`
	Size             int64   `json:"size"`
	DiffID           v1.Hash `json:"diffID,omitzero"`
	UncompressedSize int64   `json:"uncompressedSize"`
}

// Record is a step result: its key, the parts the key came from, and the
// layer. A Record written by [Store.Put] (directly, or by importing a
// shared cache) is the only thing that satisfies a lookup; an image's
// history never does (docs/cache.md, "Trust").
type Record struct {
	Key   v1.Hash `json:"key"`
	Parts Parts   `json:"parts"`
	// Layer is zero when the step changed nothing (an empty layer).
	Layer   LayerRef  `json:"layer,omitzero"`
	Created time.Time `json:"created"`
	// LastUsed is when a lookup last returned the record (the record
	// file's mtime, to within a minute); not stored in the JSON.
	LastUsed time.Time `json:"-"`
}

// ErrKeyMismatch is returned by [Store.Put] when a record's Key is not the
// key of its Parts.
var ErrKeyMismatch = errors.New("record key does not match its parts")

// Put stores r atomically under r.Key, replacing any record with that key.
// A zero r.Key is computed from r.Parts; a non-zero one must equal
// r.Parts.Key() ([ErrKeyMismatch]). A zero Created is set to now. Put is
// idempotent; a crash leaves the old record or the new one.
func (s *Store) Put(r Record) error {
	r.Parts = r.Parts.Normalize()
	key := r.Parts.Key()
	if r.Key == (v1.Hash{}) {
		r.Key = key
	} else if r.Key != key {
		return fmt.Errorf("put cache record %s (parts give %s): %w", r.Key, key, ErrKeyMismatch)
	}
	if r.Created.IsZero() {
		r.Created = time.Now().UTC()
	}
	p, err := s.shardPath("records", r.Key, ".json")
	if err != nil {
		return err
	}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode cache record %s: %w", r.Key, err)
	}
	if err := writeAtomic(s.tmpDir(), p, append(data, '\n'), durable); err != nil {
		return fmt.Errorf("put cache record %s: %w", r.Key, err)
	}
	return nil
}

// Get looks key up. A miss is found=false with a nil error; so is a
// record file that cannot be decoded or names another key, which is
// reported to the logger (the next [Store.Put] of that key replaces it).
// A hit updates the record's last-use time (at most once a minute).
func (s *Store) Get(key v1.Hash) (r Record, found bool, err error) {
	p, err := s.shardPath("records", key, ".json")
	if err != nil {
		return Record{}, false, err
	}
	data, mtime, err := readFileMtime(p)
	if errors.Is(err, os.ErrNotExist) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("get cache record %s: %w", key, err)
	}
	if r, err = decodeRecord(data); err != nil || r.Key != key {
		s.log.Warn("ignoring corrupt cache record", "key", key.String(), "path", p, "err", err)
		return Record{}, false, nil
	}
	r.LastUsed = mtime
	if now := time.Now(); now.Sub(mtime) > touchEvery {
		if err := os.Chtimes(p, now, now); err == nil {
			r.LastUsed = now
		}
	}
	return r, true, nil
}

func decodeRecord(data []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return Record{}, err
	}
	if r.Key == (v1.Hash{}) {
		return Record{}, errors.New("record has no key")
	}
	return r, nil
}

func readFileMtime(p string) ([]byte, time.Time, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, err
	}
	data, err := io.ReadAll(f)
	return data, info.ModTime(), err
}

// Delete removes the record for key; deleting a missing record is not an
// error. The removal is made durable before Delete returns, so a pruner
// may then delete the layer the record named.
func (s *Store) Delete(key v1.Hash) error {
	p, err := s.shardPath("records", key, ".json")
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("delete cache record %s: %w", key, err)
	}
	return syncDir(filepath.Dir(p))
}

// Walk calls fn for every readable record, in no particular order, with
// LastUsed set; corrupt records are skipped and reported to the logger.
// It stops at the first error fn returns, or when ctx is done. Records
// written or deleted concurrently may or may not be seen.
func (s *Store) Walk(ctx context.Context, fn func(Record) error) error {
	return s.walkShards(ctx, "records", func(p string, info os.FileInfo) error {
		if !strings.HasSuffix(p, ".json") {
			return nil
		}
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read cache record %s: %w", p, err)
		}
		r, err := decodeRecord(data)
		if err != nil || r.Key.Hex+".json" != filepath.Base(p) {
			s.log.Warn("ignoring corrupt cache record", "path", p, "err", err)
			return nil
		}
		r.LastUsed = info.ModTime()
		return fn(r)
	})
}

// walkShards calls fn for each file in dir/kind/<xx>/.
func (s *Store) walkShards(ctx context.Context, kind string, fn func(string, os.FileInfo) error) error {
	root := filepath.Join(s.dir, kind)
	shards, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("list %s: %w", root, err)
	}
	for _, sh := range shards {
		if !sh.IsDir() {
			continue
		}
		entries, err := os.ReadDir(filepath.Join(root, sh.Name()))
		if err != nil {
			return fmt.Errorf("list %s: %w", filepath.Join(root, sh.Name()), err)
		}
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			info, err := e.Info()
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("stat %s: %w", e.Name(), err)
			}
			if err := fn(filepath.Join(root, sh.Name(), e.Name()), info); err != nil {
				return err
			}
		}
	}
	return nil
}
