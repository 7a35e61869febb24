package builder

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"minibuild/cache"
	"minibuild/exec"
	"minibuild/layer"
)

// stepDirs is the scratch space of one executing step, in a store temp
// dir (same filesystem as snapshots/): upper receives the step's changes
// and becomes its snapshot; work belongs to the overlay mount.
type stepDirs struct {
	dir, upper, work string
}

func (bd *build) newStepDirs(prefix string) (stepDirs, error) {
	dir, err := bd.b.store.TempDir(prefix)
	if err != nil {
		return stepDirs{}, err
	}
	d := stepDirs{dir: dir, upper: filepath.Join(dir, "upper"), work: filepath.Join(dir, "work")}
	// "/" of a root filesystem is 0755 (overlay shows the upper's own
	// mode when there is no lower to take it from).
	if err := os.Mkdir(d.upper, 0o755); err != nil {
		return stepDirs{}, errors.Join(err, os.RemoveAll(dir))
	}
	return d, nil
}

// root is the overlay of chain's snapshots with d's upper on top.
func (d stepDirs) root(lowers []string) exec.RootSpec {
	return exec.RootSpec{Lower: lowers, Upper: d.upper, Work: d.work}
}

// sub is a second root in the same temp dir (COPY --from's source).
func (d stepDirs) sub(name string, lowers []string) exec.RootSpec {
	return exec.RootSpec{Lower: lowers, Upper: filepath.Join(d.dir, name, "upper"), Work: filepath.Join(d.dir, name, "work")}
}

// remove deletes what is left of the step's scratch space: everything
// after a failure, only the work dir after a commit (the upper was
// renamed into snapshots/).
func (d stepDirs) remove() error { return os.RemoveAll(d.dir) }

// commitLayer turns the upper directory of a finished step into its
// result. An empty upper makes no layer (history empty_layer, like
// BuildKit): only the record is written. Otherwise one walk of the upper
// (layer.Diff, normalizing it in place) writes the blob and the upper is
// renamed into the store as the layer's snapshot; the record comes last,
// so a record always names a layer that exists.
func (bd *build) commitLayer(ctx context.Context, sr *stepRun, upper string, v *vertex) (*chainLayer, error) {
	empty, err := dirEmpty(upper)
	if err != nil {
		return nil, err
	}
	rec := cache.Record{Key: sr.key, Parts: sr.parts}
	if empty {
		return nil, bd.putRecord(rec)
	}
	bd.b.traced("diff")
	desc, err := bd.writeLayer(ctx, upper)
	if err != nil {
		return nil, err
	}
	if v != nil {
		v.status(fmt.Sprintf("writing layer %s %s", desc.Digest, humanSize(desc.Size)))
	}
	if _, err := bd.b.store.CommitSnapshot(ctx, upper, desc.DiffID); err != nil {
		return nil, err
	}
	rec.Layer = cache.LayerRef{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size, DiffID: desc.DiffID, UncompressedSize: desc.UncompressedSize}
	if err := bd.putRecord(rec); err != nil {
		return nil, err
	}
	return layerOf(rec.Layer), nil
}

func (bd *build) putRecord(rec cache.Record) error {
	if err := bd.b.cache.Put(rec); err != nil {
		return fmt.Errorf("store cache record: %w", err)
	}
	return nil
}

// writeLayer diffs upper into a new blob of the store.
func (bd *build) writeLayer(ctx context.Context, upper string) (_ layer.Descriptor, err error) {
	ing, err := bd.b.store.NewIngest(ctx)
	if err != nil {
		return layer.Descriptor{}, err
	}
	defer func() { err = errors.Join(err, ing.Close()) }()
	w := bufio.NewWriterSize(ing, 1<<20)
	desc, err := layer.Diff(ctx, upper, w, layer.DiffOptions{Compression: bd.comp, Epoch: bd.plan.Epoch, Normalize: true})
	if err != nil {
		return layer.Descriptor{}, err
	}
	if err := w.Flush(); err != nil {
		return layer.Descriptor{}, fmt.Errorf("write layer: %w", err)
	}
	if err := ing.Commit(desc.Digest, desc.Size); err != nil {
		return layer.Descriptor{}, err
	}
	return desc, nil
}

// dirEmpty reports whether dir has no entries.
func dirEmpty(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}

// humanSize is "12.3MB" (SI units, like BuildKit's progress).
func humanSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%cB", float64(n)/float64(div), "kMGTPE"[exp])
}
