package builder

import (
	"context"
	"fmt"
	"slices"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"minibuild/cache"
	"minibuild/oci"
)

// fetchJobs bounds parallel layer downloads before execution.
const fetchJobs = 4

// layerNeed is a layer whose bytes the build will read.
type layerNeed struct {
	l      chainLayer
	owners []*stepRun // the cache hits whose records name it; none for a base image layer
	blob   bool       // the blob itself (an output reads it), not only its snapshot
}

// ownedLayer is a chain layer and the cache hit it comes from (nil: a
// base image layer, or one this build makes).
type ownedLayer struct {
	l     chainLayer
	owner *stepRun
}

// fetchLayers brings into the store, before anything runs, the layers
// known only remotely whose bytes the build will read: the lower
// directories of every step that runs (the chain below it, the stage or
// image a COPY --from reads) and, for a local or archive output, every
// layer of the target. A fully cached build that only stores or pushes
// its image reads none. Downloads run in parallel, rather than one by one
// as mounts ask for them.
//
// A layer of a cache hit that cannot be fetched (the shared cache is
// gone, or serves bytes that do not match) turns the hit into a miss,
// with a warning: the step runs instead, which may need more layers, so
// the needs are worked out again until every fetch succeeds. A base image
// layer that cannot be fetched is an error.
func (bd *build) fetchLayers(ctx context.Context) error {
	if bd.dry {
		return nil
	}
	var v *vertex
	defer func() {
		if v != nil {
			v.done()
		}
	}()
	for {
		var missing []*layerNeed
		for _, n := range bd.neededLayers() {
			if bd.b.store.HasBlob(n.l.desc.Digest) {
				continue
			}
			if _, ok := bd.b.store.Snapshot(n.l.diffID); ok && !n.blob {
				continue
			}
			missing = append(missing, n)
		}
		if len(missing) == 0 {
			return nil
		}
		if v == nil {
			v = bd.ev.internal("[internal] fetch remote layers")
		}
		failed := bd.fetchAll(ctx, missing, v)
		if err := ctx.Err(); err != nil {
			return err
		}
		if len(failed) == 0 {
			return nil
		}
		for _, n := range failed {
			if len(n.owners) == 0 {
				err := fmt.Errorf("fetch layer %s: %w", n.l.desc.Digest, n.err)
				v.fail(err)
				return err
			}
			for _, sr := range n.owners {
				bd.demote(sr, n.l.desc.Digest, n.err)
			}
		}
	}
}

// failedNeed is a layer that could not be fetched.
type failedNeed struct {
	*layerNeed
	err error
}

// fetchAll fetches needs in parallel and returns those that failed.
func (bd *build) fetchAll(ctx context.Context, needs []*layerNeed, v *vertex) []failedNeed {
	var (
		mu     sync.Mutex
		failed []failedNeed
		wg     sync.WaitGroup
	)
	sem := make(chan struct{}, fetchJobs)
	opts := oci.FetchOptions{Progress: blobReporter(v, "fetching"), Log: bd.b.log}
	for _, n := range needs {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			bd.b.traced("fetch layer")
			if err := bd.b.store.FetchBlob(ctx, n.l.desc.Digest, opts); err != nil {
				mu.Lock()
				failed = append(failed, failedNeed{n, err})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return failed
}

// demote turns a cache hit whose layer cannot be had into a miss.
func (bd *build) demote(sr *stepRun, layer v1.Hash, err error) {
	if !sr.hit {
		return
	}
	sr.hit, sr.rec = false, cache.Record{}
	bd.ev.warn(Warning{Location: sr.step.Location, Message: fmt.Sprintf(
		"cached layer %s of %s cannot be fetched, running the step instead: %v", layer, oneLine(sr.step.Original), err)})
}

// neededLayers lists the layers whose bytes the build will read, as the
// cache lookups stand: it follows each stage's chain as execution will
// build it (base layers, then the layer of each step: a hit's from its
// record, a miss's made here) and collects the chain below every step
// that runs, the source chain of every COPY --from that runs, and the
// target's whole chain when an output reads layers.
func (bd *build) neededLayers() []*layerNeed {
	byDigest := map[v1.Hash]*layerNeed{}
	var out []*layerNeed
	add := func(chain []ownedLayer, blob bool) {
		for _, ol := range chain {
			n := byDigest[ol.l.desc.Digest]
			if n == nil {
				n = &layerNeed{l: ol.l}
				byDigest[ol.l.desc.Digest] = n
				out = append(out, n)
			}
			n.blob = n.blob || blob
			if ol.owner != nil && !slices.Contains(n.owners, ol.owner) {
				n.owners = append(n.owners, ol.owner)
			}
		}
	}
	chains := map[*stageRun][]ownedLayer{}
	for _, st := range bd.order {
		chain := bd.predictedBase(st, chains)
		for _, sr := range st.steps {
			if !sr.hit {
				if !sr.link {
					add(chain, false)
				}
				add(bd.predictedSource(sr, chains), false)
				continue // its layer is made here
			}
			if l := layerOf(sr.rec.Layer); l != nil {
				chain = append(chain, ownedLayer{*l, sr})
			}
		}
		chains[st] = chain
	}
	if bd.outputsReadLayers() {
		add(chains[bd.stages[bd.plan.Target]], true)
	}
	return out
}

// predictedBase is the chain a stage's first step will run on.
func (bd *build) predictedBase(st *stageRun, chains map[*stageRun][]ownedLayer) []ownedLayer {
	var chain []ownedLayer
	switch {
	case st.from != nil:
		chain = append(chain, chains[st.from]...)
	case st.baseStep != nil:
		if b := st.baseStep; b.hit {
			if l := layerOf(b.rec.Layer); l != nil {
				chain = append(chain, ownedLayer{*l, b})
			}
		}
	default:
		for _, l := range st.base {
			chain = append(chain, ownedLayer{l: l})
		}
	}
	return chain
}

// predictedSource is the chain a COPY --from step reads, if any.
func (bd *build) predictedSource(sr *stepRun, chains map[*stageRun][]ownedLayer) []ownedLayer {
	if sr.step.Copy == nil {
		return nil
	}
	from := sr.step.Copy.From
	switch {
	case from.Kind == FromStageResult:
		return chains[bd.stages[from.Stage]]
	case from.Kind == FromImageRoot && from.Image != nil:
		layers, err := imageChain(from.Image)
		if err != nil {
			return nil // the step reports it when it runs
		}
		var chain []ownedLayer
		for _, l := range layers {
			chain = append(chain, ownedLayer{l: l})
		}
		return chain
	}
	return nil
}

// outputsReadLayers reports whether an output reads the image's layer
// blobs (a root filesystem, an archive); the store and a push do not.
func (bd *build) outputsReadLayers() bool {
	for _, o := range bd.req.Outputs {
		switch o.Type {
		case "local", "oci", "docker":
			return true
		}
	}
	return false
}
