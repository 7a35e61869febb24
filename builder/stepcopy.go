package builder

import (
	"context"
	"errors"
	"fmt"

	"minibuild/exec"
)

// execCopy performs a COPY or ADD: Copy into the overlay of the parent
// chain (so the destination's symlinks resolve as Docker resolves them,
// --chown names come from the image's /etc/passwd), the upper becoming the
// layer. COPY --from mounts the source's chain next to it.
//
// src is the chain of the --from stage or image (nil for a build
// context), waited for before the step took its slot.
func (bd *build) execCopy(ctx context.Context, sr *stepRun, chain, src []chainLayer, v *vertex) (_ *chainLayer, err error) {
	req, err := bd.copyRequest(ctx, sr)
	if err != nil {
		return nil, err
	}
	lowers, err := bd.b.snaps.lowers(ctx, chain, v)
	if err != nil {
		return nil, err
	}
	d, err := bd.newStepDirs("copy")
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, d.remove()) }()
	switch {
	case src != nil:
		srcLowers, err := bd.b.snaps.lowers(ctx, src, v)
		if err != nil {
			return nil, err
		}
		bd.b.traced("mount")
		err = exec.WithRoots(ctx, []exec.RootSpec{d.root(lowers), d.sub("from", srcLowers)}, func(m []string) error {
			req.Src = Tree{Dir: m[1], Kind: RootTree}
			return Copy(ctx, m[0], req)
		})
		if err != nil {
			return nil, err
		}
	case len(lowers) == 0:
		// FROM scratch so far: the upper is the whole root, no mount needed.
		if err := Copy(ctx, d.upper, req); err != nil {
			return nil, err
		}
	default:
		bd.b.traced("mount")
		if err := exec.WithRoot(ctx, d.root(lowers), func(m string) error { return Copy(ctx, m, req) }); err != nil {
			return nil, err
		}
	}
	return bd.commitLayer(ctx, sr, d.upper, v)
}

// execLink builds a COPY --link layer: the sources copied into an empty
// directory, which is the layer. Nothing below it is visible: the
// destination's symlinks in the base are not followed, and the parent
// directories it creates get default modes (0755 even with --chmod;
// owned by root, or the --chown owner), whatever the base has there
// (docs/link.md).
func (bd *build) execLink(ctx context.Context, sr *stepRun, src []chainLayer, v *vertex) (_ *chainLayer, err error) {
	req, err := bd.copyRequest(ctx, sr)
	if err != nil {
		return nil, err
	}
	d, err := bd.newStepDirs("link")
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, d.remove()) }()
	if src == nil {
		err = Copy(ctx, d.upper, req)
	} else {
		var srcLowers []string
		if srcLowers, err = bd.b.snaps.lowers(ctx, src, v); err != nil {
			return nil, err
		}
		bd.b.traced("mount")
		err = exec.WithRoot(ctx, d.sub("from", srcLowers), func(m string) error {
			req.Src = Tree{Dir: m, Kind: RootTree}
			return Copy(ctx, d.upper, req)
		})
	}
	if err != nil {
		return nil, err
	}
	return bd.commitLayer(ctx, sr, d.upper, v)
}

// execWorkdir creates WORKDIR's directory (mkdir -p, owned by USER).
func (bd *build) execWorkdir(ctx context.Context, sr *stepRun, chain []chainLayer, v *vertex) (_ *chainLayer, err error) {
	lowers, err := bd.b.snaps.lowers(ctx, chain, v)
	if err != nil {
		return nil, err
	}
	d, err := bd.newStepDirs("workdir")
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, d.remove()) }()
	op := sr.step.Workdir
	if len(lowers) == 0 {
		err = Mkdir(ctx, d.upper, op, nil)
	} else {
		bd.b.traced("mount")
		err = exec.WithRoot(ctx, d.root(lowers), func(m string) error { return Mkdir(ctx, m, op, nil) })
	}
	if err != nil {
		return nil, err
	}
	return bd.commitLayer(ctx, sr, d.upper, v)
}

// copyRequest is the CopyRequest of a step, its URL sources downloaded
// (those keyed by --checksum are fetched only now, and verified).
func (bd *build) copyRequest(ctx context.Context, sr *stepRun) (CopyRequest, error) {
	op := sr.step.Copy
	req := CopyRequest{Op: op}
	if op.From.Kind == FromContext || op.From.Kind == FromNamedDir {
		tree, _, err := bd.sourceTree(op)
		if err != nil {
			return req, err
		}
		req.Src = tree
	}
	fetched := sr.fetched
	if op.Checksum != "" && len(fetched) == 0 {
		for _, src := range op.Sources {
			if op.Add && isURL(src) {
				f, err := bd.fetch(ctx, src, op.Checksum)
				if err != nil {
					return req, err
				}
				fetched = append(fetched, f)
			}
		}
	}
	req.Fetched = fetched
	return req, nil
}

// copySourceChain waits for the chain COPY --from reads: another stage's
// result or an image's layers; nil for build contexts and other steps. A
// --from stage that is scratch with no files is an empty chain, not nil.
// Callers wait for it before taking a slot: a step must not hold one
// while the stage it reads still needs one.
func (bd *build) copySourceChain(ctx context.Context, sr *stepRun) ([]chainLayer, error) {
	if sr.step.Copy == nil {
		return nil, nil
	}
	from := sr.step.Copy.From
	switch from.Kind {
	case FromStageResult:
		chain, err := bd.stages[from.Stage].wait(ctx)
		if chain == nil && err == nil {
			chain = []chainLayer{}
		}
		return chain, err
	case FromImageRoot:
		if from.Image == nil {
			return []chainLayer{}, nil // --from=scratch
		}
		return imageChain(from.Image)
	}
	return nil, nil
}

// fetch downloads an ADD URL into the build's temp space.
func (bd *build) fetch(ctx context.Context, url, checksum string) (*Fetched, error) {
	dir, err := bd.b.store.TempDir("add")
	if err != nil {
		return nil, err
	}
	bd.b.traced("fetch")
	f, err := Fetch(ctx, bd.b.client, url, checksum, dir)
	if err != nil {
		return nil, fmt.Errorf("ADD %s: %w", url, err)
	}
	bd.addCleanup(dir)
	return f, nil
}
