// Package cache derives step cache keys, stores step results, and explains
// cache misses.
//
// It owns the key spec (docs/cache.md): a step's key is the sha256 of the
// canonical JSON of one [Parts] value — parent state, normalized
// instruction, observable env, input digests and platform — and nothing
// else. The builder assembles Parts from the Dockerfile (helped by
// [Scope.Observed] and [Instruction.String]) and asks the [Store] for a
// [Record] by [Parts.Key]. A record this store wrote, directly or by
// importing a shared cache, is the only thing that satisfies a lookup; an
// image's history never does.
//
// Inputs from a build context are listed by [Scan] — a parallel,
// symlink-safe walk that reuses content digests through a [StatCache]
// with git's racy-timestamp rule — and digested by [Digest]. Listings are
// stored content-addressed ([Store.PutFiles]) so that [Explain] can name
// the files that changed; the last [Build] per [BuildID] is kept so
// [ExplainBuild] can compare a build with the one before it.
//
// The package refuses to know what a Dockerfile is: it never parses one,
// never decides which instruction observes what beyond the documented
// [Observes] sets, and never touches layers, blobs or images — a
// [LayerRef] is just a name the builder stores and gets back.
package cache
