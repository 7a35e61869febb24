package builder

import (
	"context"
	"fmt"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"minibuild/oci"
)

// export writes the target stage's image into the store and tags it. The
// config and manifest are functions of the plan and the layers, so on a
// build that changed nothing they exist already and nothing is written;
// a tag that already names the image is left alone.
func (bd *build) export(ctx context.Context, res *Result) error {
	v := bd.ev.internal("exporting to image")
	err := bd.putImage(ctx, res, v)
	v.finish(err)
	return err
}

func (bd *build) putImage(ctx context.Context, res *Result, v *vertex) error {
	target := bd.stages[bd.plan.Target]
	cfg, layers := bd.imageConfig(target)
	desc, err := bd.b.store.PutImage(ctx, cfg, layers, baseAnnotations(target.stage))
	if err != nil {
		return err
	}
	img, err := bd.b.store.Image(desc.Digest)
	if err != nil {
		return err
	}
	if res.Config, err = img.ConfigName(); err != nil {
		return err
	}
	res.Manifest = desc
	v.status("writing image " + desc.Digest.String())
	for _, t := range bd.req.Tags {
		n, err := oci.ParseName(t)
		if err != nil {
			return err
		}
		res.Tags = append(res.Tags, n)
		if d, err := bd.b.store.Resolve(n); err == nil && d.Digest == desc.Digest {
			continue
		}
		if err := bd.b.store.Tag(ctx, n, desc); err != nil {
			return err
		}
		v.status("naming to " + n)
	}
	return nil
}

// checkTags refuses tags that are not valid tag names, before any work.
func checkTags(tags []string) error {
	for _, t := range tags {
		n, err := oci.ParseName(t)
		if err != nil {
			return fmt.Errorf("tag %q: %w", t, err)
		}
		if strings.Contains(n, "@") {
			return fmt.Errorf("tag %q: a digest cannot be a tag", t)
		}
	}
	return nil
}

// imageConfig is the target's config with the layers of its chain: the
// plan's config (history included) deep-copied, RootFS.DiffIDs set, and
// the history entries of filesystem steps that changed nothing marked
// empty_layer, along the whole FROM-stage chain.
func (bd *build) imageConfig(target *stageRun) (*v1.ConfigFile, []v1.Descriptor) {
	cfg := cloneConfig(target.stage.Config)
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = make([]v1.Hash, 0, len(target.chain))
	layers := make([]v1.Descriptor, 0, len(target.chain))
	for _, l := range target.chain {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
		layers = append(layers, l.desc)
	}
	// Each stage's steps wrote one history entry each, after those of
	// the stage it starts from.
	end := len(cfg.History)
	for st := target; st != nil && end >= 0; st = st.from {
		start := end - len(st.stage.Steps)
		for i, step := range st.stage.Steps {
			if sr := bd.byStep[step]; start+i >= 0 && sr != nil && sr.layer == nil {
				cfg.History[start+i].EmptyLayer = true
			}
		}
		end = start
		if b := st.baseStep; b != nil && st.from == nil && b.layer != nil {
			cfg.History = slices.Insert(cfg.History, max(start, 0), b.step.History)
		}
	}
	return cfg, layers
}

// baseAnnotations names the image the stage chain starts from
// (org.opencontainers.image.base.{name,digest}), so `rebase` can find it.
// No org.opencontainers.image.created: the config's `created` (the epoch)
// says it, and an annotation adds nothing but another field to keep
// reproducible.
func baseAnnotations(s *Stage) map[string]string {
	if s.BaseName == "" {
		return nil
	}
	return map[string]string{
		ocispec.AnnotationBaseImageName:   s.BaseName,
		ocispec.AnnotationBaseImageDigest: s.BaseDigest.String(),
	}
}
