package builder

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"minibuild/cache"
)

// PruneOptions is a request to [Builder.Prune]. The zero value keeps every
// usable cache record and removes only what nothing keeps.
type PruneOptions struct {
	// KeepStorage, when positive, keeps the most recently used records
	// whose layers total at most this many bytes (compressed) and removes
	// the others (--keep-storage).
	KeepStorage int64
	// All removes every cache record (--all); tagged images stay.
	All bool
}

// PruneReport is what [Builder.Prune] removed.
type PruneReport struct {
	Records   int   // cache records deleted
	Listings  int   // stored input listings deleted
	Blobs     int   // blobs deleted
	Bytes     int64 // their size
	Snapshots int   // snapshots deleted
}

// Prune removes cache records, then every blob and snapshot that neither a
// tag nor a remaining record keeps, and the input listings nothing refers
// to. Records whose layer blob is gone are always dropped.
//
// It is safe while other builds run: the garbage collection takes the
// store's exclusive lock (waiting for other processes that have the store
// open, which wait in turn while it runs). A record another process writes
// between the record walk and the collection may lose its layer; a later
// lookup then finds the blob missing and treats the record as a miss.
func (b *Builder) Prune(ctx context.Context, opts PruneOptions) (PruneReport, error) {
	var rep PruneReport
	var records []cache.Record
	err := b.cache.Walk(ctx, func(r cache.Record) error {
		records = append(records, r)
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("prune: %w", err)
	}
	keep, drop := b.choosePrune(records, opts)
	for _, r := range drop {
		if err := b.cache.Delete(r.Key); err != nil {
			return rep, fmt.Errorf("prune: %w", err)
		}
		rep.Records++
	}
	var roots []v1.Hash
	for _, r := range keep {
		if r.Layer.Digest != (v1.Hash{}) {
			roots = append(roots, r.Layer.Digest, r.Layer.DiffID)
		}
	}
	gc, err := b.store.GC(ctx, roots)
	if err != nil {
		return rep, fmt.Errorf("prune: %w", err)
	}
	rep.Blobs, rep.Bytes, rep.Snapshots = len(gc.Blobs), gc.Bytes, len(gc.Snapshots)
	if rep.Listings, err = b.cache.PruneFiles(ctx); err != nil {
		return rep, fmt.Errorf("prune: %w", err)
	}
	return rep, nil
}

// choosePrune splits records into kept and dropped: unusable ones (layer
// blob gone) always go; with All everything goes; with KeepStorage the
// most recently used are kept while their layers fit the budget, and
// every record used less recently than the first that does not fit goes
// too (least recently used first, like BuildKit's --keep-storage: a
// small old record never outlives a bigger, more recent one).
func (b *Builder) choosePrune(records []cache.Record, opts PruneOptions) (keep, drop []cache.Record) {
	slices.SortFunc(records, func(x, y cache.Record) int {
		return cmp.Or(y.LastUsed.Compare(x.LastUsed), cmp.Compare(x.Key.Hex, y.Key.Hex))
	})
	var used int64
	full := false
	for _, r := range records {
		hasLayer := r.Layer.Digest != (v1.Hash{})
		switch {
		case opts.All, hasLayer && !b.layerAvailable(r.Layer.Digest):
			drop = append(drop, r)
		case opts.KeepStorage > 0 && (full || used+r.Layer.Size > opts.KeepStorage):
			full = true
			drop = append(drop, r)
		default:
			used += r.Layer.Size
			keep = append(keep, r)
		}
	}
	return keep, drop
}
