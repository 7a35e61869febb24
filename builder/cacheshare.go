package builder

import (
	"context"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"minibuild/cache"
	"minibuild/oci"
)

// Shared caches: --cache-to writes step records and their layers as an
// OCI artifact (a registry tag, or an OCI layout directory), --cache-from
// reads them back (docs/cache.md, "Shared cache format"). The document is
// package cache's; moving it and the blobs is package oci's.

// checkCacheSpecs refuses --cache-from/--cache-to values the engine
// cannot use, before any work.
func checkCacheSpecs(req Request) error {
	for _, c := range req.CacheFrom {
		if err := checkCacheSpec("--cache-from", c, false); err != nil {
			return err
		}
	}
	for _, c := range req.CacheTo {
		if err := checkCacheSpec("--cache-to", c, true); err != nil {
			return err
		}
	}
	return nil
}

func checkCacheSpec(flag string, c CacheSpec, to bool) error {
	switch c.Type {
	case "registry":
		n, err := oci.ParseName(c.Ref)
		if err != nil {
			return fmt.Errorf("%s ref=%s: %w", flag, c.Ref, err)
		}
		if to && strings.Contains(n, "@") {
			return fmt.Errorf("%s ref=%s: a cache is written to a tag, not a digest", flag, c.Ref)
		}
	case "local":
		if c.Dir == "" {
			return fmt.Errorf("%s type=local: no directory", flag)
		}
	default:
		return fmt.Errorf("%s type=%q: %w (want registry or local)", flag, c.Type, ErrUnsupported)
	}
	switch c.Mode {
	case "", "min", "max":
	default:
		return fmt.Errorf("%s mode=%q: want min or max", flag, c.Mode)
	}
	return nil
}

// cacheName is how progress and errors name a shared cache.
func cacheName(c CacheSpec) string {
	if c.Type == "local" {
		return "type=local " + c.Dir
	}
	return "type=registry " + c.Ref
}

// importCaches reads every --cache-from, in order, and puts into the
// local cache the records whose keys this build looks up and the local
// cache cannot answer (no record, or one whose layer is gone): an
// imported record is then a record like any other, its layer known in the
// cache's repository and fetched only if something reads it. Nothing is
// read when every key is answered locally, so a no-op rebuild makes no
// request. A cache that cannot be read, or whose records cannot be
// trusted, is a warning: the build goes on without them.
func (bd *build) importCaches(ctx context.Context) {
	if bd.dry || len(bd.req.CacheFrom) == 0 {
		return
	}
	want := map[v1.Hash]bool{}
	for _, sr := range bd.steps {
		if sr.forced || want[sr.key] {
			continue
		}
		rec, found, err := bd.b.cache.Get(sr.key)
		if err == nil && found && bd.recordUsable(rec) {
			continue
		}
		want[sr.key] = true
	}
	for _, c := range bd.req.CacheFrom {
		if len(want) == 0 {
			return
		}
		v := bd.ev.internal("importing cache manifest from " + cacheName(c))
		n, err := bd.importCache(ctx, c, want, v)
		if err != nil {
			v.done() // not a failure of the build
			bd.ev.warn(Warning{Message: fmt.Sprintf("--cache-from %s: cannot read the cache, building without it: %v", cacheName(c), err)})
			continue
		}
		v.status(fmt.Sprintf("%d cache records imported", n))
		v.done()
	}
}

// recordUsable reports whether a record's layer can be had.
func (bd *build) recordUsable(rec cache.Record) bool {
	return rec.Layer.Digest == (v1.Hash{}) || bd.b.layerAvailable(rec.Layer.Digest)
}

// importCache imports the records of one cache that want lists, deleting
// each from want, and returns how many it imported.
func (bd *build) importCache(ctx context.Context, c CacheSpec, want map[v1.Hash]bool, v *vertex) (int, error) {
	var a oci.Artifact
	var err error
	if c.Type == "local" {
		a, err = bd.b.store.FetchArtifactLayout(ctx, c.Dir, "")
	} else {
		a, err = bd.b.store.FetchArtifact(ctx, c.Ref)
	}
	if err != nil {
		return 0, err
	}
	v.status("cache manifest " + a.Descriptor.Digest.String())
	if a.ConfigMediaType != cache.ExportMediaType {
		return 0, fmt.Errorf("%s is not a minibuild cache (config media type %q, want %q)", a.Descriptor.Digest, a.ConfigMediaType, cache.ExportMediaType)
	}
	records, rejected, err := cache.DecodeExport(a.Config)
	if err != nil {
		return 0, err
	}
	blobs := map[v1.Hash]v1.Descriptor{}
	for _, b := range a.Blobs {
		blobs[b.Digest] = b
	}
	n := 0
	for _, r := range records {
		if !want[r.Key] {
			continue
		}
		if err := checkImportedLayer(r.Layer, blobs); err != nil {
			rejected = append(rejected, fmt.Errorf("record %s: %w", r.Key, err))
			continue
		}
		if err := bd.b.cache.Put(r); err != nil {
			rejected = append(rejected, err)
			continue
		}
		delete(want, r.Key)
		n++
	}
	if len(rejected) > 0 {
		bd.ev.warn(Warning{Message: fmt.Sprintf("--cache-from %s: %d cache records ignored: %v", cacheName(c), len(rejected), errors.Join(rejected...))})
	}
	return n, nil
}

// checkImportedLayer requires a record's layer to be one of the
// artifact's blobs (so its source is known) with the same descriptor, and
// of a layer media type.
func checkImportedLayer(l cache.LayerRef, blobs map[v1.Hash]v1.Descriptor) error {
	if l.Digest == (v1.Hash{}) {
		return nil
	}
	b, ok := blobs[l.Digest]
	switch {
	case !ok:
		return fmt.Errorf("layer %s is not in the cache artifact", l.Digest)
	case b.Size != l.Size:
		return fmt.Errorf("layer %s: %d bytes in the record, %d in the artifact", l.Digest, l.Size, b.Size)
	case !types.MediaType(l.MediaType).IsLayer():
		return fmt.Errorf("layer %s: media type %q is not a layer's", l.Digest, l.MediaType)
	}
	return nil
}

// exportCaches writes every --cache-to, after the image is exported. A
// failure is the build's error unless the cache says ignore-error=true
// (BuildKit's rule), which makes it a warning.
func (bd *build) exportCaches(ctx context.Context) error {
	for _, c := range bd.req.CacheTo {
		v := bd.ev.internal("exporting cache to " + cacheName(c))
		err := bd.exportCache(ctx, c, v)
		if err == nil {
			v.done()
			continue
		}
		if c.IgnoreError {
			v.done()
			bd.ev.warn(Warning{Message: fmt.Sprintf("--cache-to %s: cache not written (ignore-error=true): %v", cacheName(c), err)})
			continue
		}
		v.fail(err)
		return fmt.Errorf("export cache to %s: %w", cacheName(c), err)
	}
	return nil
}

// exportCache writes one shared cache: the records of the steps its mode
// selects, and their layers (only those the destination lacks move; a
// layer known only remotely is mounted or streamed, not stored here).
func (bd *build) exportCache(ctx context.Context, c CacheSpec, v *vertex) error {
	var records []cache.Record
	var blobs []v1.Descriptor
	seen := map[v1.Hash]bool{}
	for _, sr := range bd.cacheSteps(c.Mode) {
		rec, found, err := bd.b.cache.Get(sr.key)
		if err != nil {
			return err
		}
		if !found {
			continue // pruned meanwhile: not worth failing for
		}
		records = append(records, rec)
		if l := rec.Layer; l.Digest != (v1.Hash{}) && !seen[l.Digest] {
			seen[l.Digest] = true
			blobs = append(blobs, v1.Descriptor{MediaType: types.MediaType(l.MediaType), Size: l.Size, Digest: l.Digest})
		}
	}
	cfg, err := cache.EncodeExport(records)
	if err != nil {
		return err
	}
	spec := oci.ArtifactSpec{ConfigMediaType: cache.ExportMediaType, Config: cfg, Blobs: blobs}
	opts := oci.PushOptions{Progress: blobReporter(v, "writing"), Log: bd.b.log}
	var d v1.Descriptor
	if c.Type == "local" {
		d, err = bd.b.store.PushArtifactLayout(ctx, c.Dir, "", spec, opts)
	} else {
		d, err = bd.b.store.PushArtifact(ctx, c.Ref, spec, opts)
	}
	if err != nil {
		return err
	}
	v.status(fmt.Sprintf("writing cache manifest %s (%d records, %d layers)", d.Digest, len(records), len(blobs)))
	return nil
}

// cacheSteps are the steps a cache of mode exports, among those that have
// a record (hits and steps that ran): with "max" every step of every stage
// built; with "min" (the default) the steps whose layers are in the image:
// the target stage and the stages it starts FROM.
func (bd *build) cacheSteps(mode string) []*stepRun {
	var steps []*stepRun
	if mode == "max" {
		steps = bd.steps
	} else {
		for st := bd.stages[bd.plan.Target]; st != nil; st = st.from {
			if st.baseStep != nil {
				steps = append(steps, st.baseStep)
			}
			steps = append(steps, st.steps...)
		}
	}
	var out []*stepRun
	for _, sr := range steps {
		if sr.hit || sr.ran {
			out = append(out, sr)
		}
	}
	return out
}
