package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"minibuild/layer"
	"minibuild/oci"
)

// checkOutputs refuses outputs the engine cannot write, before any work.
func checkOutputs(req Request) error {
	if err := checkTags(req.Tags); err != nil {
		return err
	}
	if req.pushing() && len(req.Tags) == 0 {
		return errors.New("--push and type=registry need a name to push to (-t)")
	}
	for _, o := range req.Outputs {
		switch o.Type {
		case "oci", "docker", "local":
			if o.Dest == "" && (o.Writer == nil || o.Type == "local") {
				return fmt.Errorf("output type=%s: no dest", o.Type)
			}
		case "registry": // pushed after the other outputs (registry.go)
		default:
			return fmt.Errorf("output type=%q: %w (want oci, docker or local)", o.Type, ErrUnsupported)
		}
	}
	return nil
}

// writeOutputs writes the image where Request.Outputs say.
func (bd *build) writeOutputs(ctx context.Context, res *Result) error {
	for _, o := range bd.req.Outputs {
		if o.Type == "registry" {
			continue // bd.push
		}
		v := bd.ev.internal(fmt.Sprintf("exporting to %s", outputName(o)))
		var err error
		switch o.Type {
		case "oci", "docker":
			err = bd.saveArchive(ctx, res, o)
		case "local":
			err = bd.exportLocal(ctx, o.Dest)
		}
		v.finish(err)
		if err != nil {
			return fmt.Errorf("output type=%s: %w", o.Type, err)
		}
	}
	return nil
}

func outputName(o Output) string {
	switch o.Type {
	case "local":
		return "client directory " + o.Dest
	case "oci":
		return "oci image format " + o.Dest
	}
	return "docker image format " + o.Dest
}

// saveArchive writes an OCI archive or a `docker load` tarball: to
// o.Writer, or atomically to o.Dest (temp file next to it, fsync,
// rename), so a reader never sees half an archive.
func (bd *build) saveArchive(ctx context.Context, res *Result, o Output) (err error) {
	ref := res.Manifest.Digest.String()
	if len(res.Tags) > 0 {
		ref = res.Tags[0] // the archive then names the image
	}
	format := oci.FormatOCI
	if o.Type == "docker" {
		format = oci.FormatDocker
	}
	// An archive holds every blob: bring the layers known only remotely.
	if err := bd.b.store.FetchImage(ctx, ref, oci.FetchOptions{Log: bd.b.log}); err != nil {
		return err
	}
	if o.Writer != nil {
		return bd.b.store.Save(ctx, ref, o.Writer, format)
	}
	dest, err := filepath.Abs(o.Dest)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := bd.b.store.Save(ctx, ref, f, format); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), dest)
}

// exportLocal writes the image's root filesystem into dir: every layer
// applied in order, whiteouts deleting what they name.
func (bd *build) exportLocal(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i, l := range bd.stages[bd.plan.Target].chain {
		if err := bd.applyLayer(ctx, dir, l); err != nil {
			return fmt.Errorf("apply layer %d: %w", i+1, err)
		}
	}
	return nil
}

// applyLayer applies one layer to a flat tree (MergeWhiteouts).
func (bd *build) applyLayer(ctx context.Context, dir string, l chainLayer) (err error) {
	if err := bd.b.store.FetchBlob(ctx, l.desc.Digest, oci.FetchOptions{}); err != nil {
		return err
	}
	rc, err := bd.b.store.OpenBlob(l.desc.Digest)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, rc.Close()) }()
	if _, err := layer.Apply(ctx, dir, rc, layer.ApplyOptions{Digest: l.desc.Digest, DiffID: l.diffID, Whiteout: layer.MergeWhiteouts}); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, rc) // the verifier checks at EOF
	return err
}
