package builder

import (
	"log/slog"
	"net/http"

	"minibuild/cache"
	"minibuild/oci"
)

// Builder executes build plans against one image store and one step
// cache. It is safe for concurrent use: several builds (and Explain, Run,
// Prune) may run at once, in one process or in several sharing the store.
type Builder struct {
	store   *oci.Store
	cache   *cache.Store
	log     *slog.Logger
	statDir string
	client  *http.Client
	snaps   *snapshotter
	// trace, when set (tests only), hears about the expensive things a
	// build does: "mount", "run", "diff", "apply", "fetch".
	trace func(what string)
}

// Option configures [New].
type Option func(*options)

type options struct {
	log     *slog.Logger
	statDir string
	client  *http.Client
}

// WithLogger makes the builder report recoverable problems (a corrupt
// cache record read as a miss, a stat cache it could not save) to l.
// Default: silent.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithStatCacheDir keeps the stat caches of build contexts (docs/cache.md
// §7) in dir instead of the cache store's stat/ directory.
func WithStatCacheDir(dir string) Option { return func(o *options) { o.statDir = dir } }

// WithHTTPClient sets the client ADD uses for URL sources; default
// http.DefaultClient.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// New returns a Builder working on store and cache. It does not take
// ownership of them: the caller closes them after the last call returns.
func New(store *oci.Store, cache *cache.Store, opts ...Option) *Builder {
	o := options{log: slog.New(slog.DiscardHandler), client: http.DefaultClient}
	for _, opt := range opts {
		opt(&o)
	}
	b := &Builder{store: store, cache: cache, log: o.log, statDir: o.statDir, client: o.client}
	b.snaps = newSnapshotter(b)
	return b
}

// traced reports an expensive operation to the test hook.
func (b *Builder) traced(what string) {
	if b.trace != nil {
		b.trace(what)
	}
}
