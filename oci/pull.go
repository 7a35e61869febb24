package oci

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// repoDigestsAnnotation lists, on an index.json entry, the registry
// references the image was pulled as ("docker.io/library/busybox@sha256:…",
// comma-separated, most recent first), like Docker's RepoDigests. The
// digest is what the registry resolved the tag or pin to: for a
// multi-platform image, the index's, not the manifest's. [Store.ResolveBase]
// finds pinned bases by it offline and compares it with the registry's
// answer under [PullAlways].
const repoDigestsAnnotation = "dev.minibuild.repo-digests"

// maxRepoDigests bounds the list an entry keeps.
const maxRepoDigests = 16

// PullOptions is a request to [Store.Pull] and [Store.ResolveBase]. The zero
// value pulls the host's platform, every layer, four blobs at a time,
// silently.
type PullOptions struct {
	// Platform picks an image of a multi-platform index; zero means
	// [HostPlatform]. A single-platform image that does not match a
	// platform asked for is an error ([ErrNotFound]); one that does not
	// match the host is pulled with a warning to Log.
	Platform v1.Platform
	// Lazy fetches the manifest and config only: layers not in the store
	// are recorded as available in the registry ([Store.AddBlobSource]),
	// and fetched when something needs their bytes ([Store.FetchBlob],
	// [Store.FetchImage]); a push to the same registry never needs them.
	Lazy bool
	// Jobs bounds parallel blob downloads; 0 means 4.
	Jobs int
	// Progress, if set, hears about each blob; calls are serialized.
	Progress func(BlobProgress)
	// Log, if set, receives warnings (platform mismatch).
	Log *slog.Logger
}

func (o PullOptions) platform() v1.Platform {
	if o.Platform.OS == "" && o.Platform.Architecture == "" {
		return HostPlatform()
	}
	return normalizePlatform(o.Platform)
}

func (o PullOptions) logger() *slog.Logger {
	if o.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Log
}

// Pull fetches the image ref (normalized by [ParseName]: "busybox" is
// docker.io/library/busybox:latest) from its registry into the store and
// returns the index.json entry it made. A multi-platform index resolves to
// the manifest for opts.Platform; only that manifest, its config and its
// layers are stored (the index is not). Blobs already in the store are
// not fetched; the others are downloaded in parallel, each streamed
// through an ingest and verified before it becomes visible, and a
// transfer that breaks is retried.
//
// A tag is pointed at the manifest; a digest reference ("name@sha256:…")
// tags nothing and is recorded, like the tag's resolution, as a repo
// digest on the entry, so [Store.ResolveBase] finds it offline. Every blob
// is recorded as available in the repository ([Store.AddBlobSource]).
// Nothing is tagged unless everything verified; blobs fetched before a
// failure stay as unreferenced blobs (fsck lists them, GC removes them,
// the next pull reuses them). Registry failures are *RemoteError.
func (s *Store) Pull(ctx context.Context, ref string, opts PullOptions) (v1.Descriptor, error) {
	n, err := ParseName(ref)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("pull: %w", err)
	}
	r, err := s.remote.reference(n)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("pull: %w", err)
	}
	j := &pullJob{s: s, name: n, ref: r, repo: repoName(r.Context()), opts: opts, rep: newReporter(opts.Progress)}
	return j.run(ctx)
}

// pullJob is one Pull.
type pullJob struct {
	s    *Store
	name string         // normalized, as asked
	ref  name.Reference // the same, for go-containerregistry
	repo string         // normalized repository
	opts PullOptions
	rep  *reporter
	p    *remote.Puller
}

func (j *pullJob) fail(object string, d v1.Hash, err error) error {
	return remoteErr("pull", j.name, j.ref.Context(), object, d, err)
}

func (j *pullJob) run(ctx context.Context) (v1.Descriptor, error) {
	p, err := remote.NewPuller(j.s.remote.options(ctx, j.opts.Jobs)...)
	if err != nil {
		return v1.Descriptor{}, j.fail("", v1.Hash{}, err)
	}
	j.p = p
	root, raw, err := j.manifest(ctx, j.ref)
	if err != nil {
		return v1.Descriptor{}, err
	}
	md, mraw := root, raw
	if isIndexType(root.MediaType) {
		if md, mraw, err = j.child(ctx, root, raw); err != nil {
			return v1.Descriptor{}, err
		}
	}
	m, err := parseManifest(mraw, md)
	if err != nil {
		return v1.Descriptor{}, j.fail("manifest", md.Digest, err)
	}
	cfg, err := j.blobs(ctx, m)
	if err != nil {
		return v1.Descriptor{}, err
	}
	plat := configPlatform(cfg)
	if err := j.checkPlatform(isIndexType(root.MediaType), md.Digest, plat); err != nil {
		return v1.Descriptor{}, err
	}
	if err := j.s.AddBlobSource(ctx, j.repo, append([]v1.Descriptor{m.Config}, m.Layers...)...); err != nil {
		return v1.Descriptor{}, fmt.Errorf("pull %s: %w", j.name, err)
	}
	if err := j.s.WriteBlob(ctx, bytes.NewReader(mraw), md.Digest, md.Size); err != nil {
		return v1.Descriptor{}, fmt.Errorf("pull %s: %w", j.name, err)
	}
	entry := v1.Descriptor{MediaType: md.MediaType, Size: md.Size, Digest: md.Digest, Platform: &plat}
	tag := j.name
	if strings.Contains(tag, "@") {
		tag = ""
	}
	out, err := j.s.recordPull(ctx, tag, entry, j.repo+"@"+root.Digest.String())
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("pull %s: %w", j.name, err)
	}
	return out, nil
}

// manifest fetches the manifest or index r names.
func (j *pullJob) manifest(ctx context.Context, r name.Reference) (v1.Descriptor, []byte, error) {
	var want v1.Hash
	if dg, ok := r.(name.Digest); ok {
		want, _ = v1.NewHash(dg.DigestStr())
	}
	d, err := j.p.Get(ctx, r)
	if err != nil {
		return v1.Descriptor{}, nil, j.fail("manifest", want, err)
	}
	mt := types.MediaType(strings.TrimSpace(strings.Split(string(d.MediaType), ";")[0]))
	if !isIndexType(mt) && !isManifestType(mt) {
		// Some registries send application/json: trust the document.
		if sniffed := sniffMediaType(d.Manifest); isIndexType(sniffed) || isManifestType(sniffed) {
			mt = sniffed
		} else {
			return v1.Descriptor{}, nil, j.fail("manifest", d.Digest, fmt.Errorf("media type %q: %w: not an OCI or Docker schema 2 image", d.MediaType, ErrUnsupported))
		}
	}
	if d.Size > maxMetadata {
		return v1.Descriptor{}, nil, j.fail("manifest", d.Digest, fmt.Errorf("%d bytes: %w: too large", d.Size, ErrInvalid))
	}
	return v1.Descriptor{MediaType: mt, Size: d.Size, Digest: d.Digest}, d.Manifest, nil
}

// child picks and fetches the platform's manifest of an index.
func (j *pullJob) child(ctx context.Context, root v1.Descriptor, raw []byte) (v1.Descriptor, []byte, error) {
	idx, err := parseIndex(raw, root)
	if err != nil {
		return v1.Descriptor{}, nil, j.fail("index", root.Digest, err)
	}
	c, err := choosePlatform(root.Digest, idx.Manifests, j.opts.platform())
	if err != nil {
		return v1.Descriptor{}, nil, j.fail("", v1.Hash{}, err)
	}
	md, mraw, err := j.manifest(ctx, j.ref.Context().Digest(c.Digest.String()))
	if err != nil {
		return v1.Descriptor{}, nil, err
	}
	if md.Digest != c.Digest || md.Size != c.Size {
		return v1.Descriptor{}, nil, j.fail("manifest", c.Digest, fmt.Errorf("got %d bytes of %s, index says %d bytes: %w", md.Size, md.Digest, c.Size, ErrDigestMismatch))
	}
	if isManifestType(c.MediaType) {
		md.MediaType = c.MediaType
	}
	return md, mraw, nil
}

// blobs makes the config and layers of m local (layers only known remotely
// with Lazy) and returns the parsed config.
func (j *pullJob) blobs(ctx context.Context, m *v1.Manifest) (*v1.ConfigFile, error) {
	repo := j.ref.Context()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobsOr(j.opts.Jobs))
	seen := map[v1.Hash]bool{}
	for i, b := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		if seen[b.Digest] {
			continue
		}
		seen[b.Digest] = true
		object := "layer"
		if i == 0 {
			object = "config"
		}
		if err := checkHash(b.Digest); err != nil {
			return nil, j.fail(object, b.Digest, err)
		}
		if size, err := j.s.blobSize(b.Digest); err == nil {
			if size != b.Size {
				return nil, j.fail(object, b.Digest, fmt.Errorf("manifest says %d bytes, the store has %d: %w", b.Size, size, ErrSizeMismatch))
			}
			j.rep.report(BlobProgress{Digest: b.Digest, MediaType: b.MediaType, Size: b.Size, Done: b.Size, Status: BlobExists})
			continue
		}
		if j.opts.Lazy && i > 0 {
			j.rep.report(BlobProgress{Digest: b.Digest, MediaType: b.MediaType, Size: b.Size, Status: BlobRemote})
			continue
		}
		g.Go(func() error {
			return j.fail(object, b.Digest, j.s.download(gctx, j.p, repo, b, j.rep))
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	raw, err := j.s.readVerified(m.Config)
	if err != nil {
		return nil, j.fail("config", m.Config.Digest, err)
	}
	cfg, err := parseConfig(raw, m)
	if err != nil {
		return nil, j.fail("config", m.Config.Digest, err)
	}
	return cfg, nil
}

// checkPlatform refuses a single-platform image that does not match a
// platform the caller asked for, and warns when it does not match the host.
func (j *pullJob) checkPlatform(fromIndex bool, d v1.Hash, have v1.Platform) error {
	want := j.opts.platform()
	if fromIndex || platformScore(want, have) > 0 {
		return nil
	}
	if j.opts.Platform.OS != "" || j.opts.Platform.Architecture != "" {
		return j.fail("manifest", d, fmt.Errorf("image is for %s, not %s: %w", have, want, ErrNotFound))
	}
	j.opts.logger().Warn("image platform does not match the host", "image", j.name, "platform", have.String(), "host", want.String())
	return nil
}

// recordPull adds the index.json entry of a pull: entry tagged tag (or
// untagged when tag is ""), with repoDigest added to the repo digests of
// every entry of the same manifest. It returns the entry as written (for
// an untagged pull of a manifest that has entries already, the first).
func (s *Store) recordPull(ctx context.Context, tag string, entry v1.Descriptor, repoDigest string) (v1.Descriptor, error) {
	if err := s.checkRoot(entry); err != nil {
		return v1.Descriptor{}, err
	}
	var out v1.Descriptor
	err := s.updateIndex(ctx, func(idx *v1.IndexManifest) error {
		list := []string{repoDigest}
		for _, m := range idx.Manifests {
			if m.Digest == entry.Digest {
				list = mergeRepoDigests(list, repoDigests(m))
			}
		}
		out = v1.Descriptor{}
		for i, m := range idx.Manifests {
			if m.Digest != entry.Digest {
				continue
			}
			m = withRepoDigests(m, list)
			if m.Platform == nil {
				m.Platform = entry.Platform
			}
			idx.Manifests[i] = m
			if out.Digest == (v1.Hash{}) {
				out = m
			}
		}
		if tag == "" && out.Digest != (v1.Hash{}) {
			return nil
		}
		out = withRepoDigests(indexEntry(entry, tag), list)
		addEntries(idx, []v1.Descriptor{out})
		return nil
	})
	if err != nil {
		return v1.Descriptor{}, err
	}
	return out, nil
}

// repoDigests is the repo digests list of an index.json entry.
func repoDigests(d v1.Descriptor) []string {
	v := d.Annotations[repoDigestsAnnotation]
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// withRepoDigests is d with its repo digests set to list (annotations
// copied, never shared).
func withRepoDigests(d v1.Descriptor, list []string) v1.Descriptor {
	ann := make(map[string]string, len(d.Annotations)+1)
	for k, v := range d.Annotations {
		ann[k] = v
	}
	ann[repoDigestsAnnotation] = strings.Join(list, ",")
	d.Annotations = ann
	return d
}

// mergeRepoDigests appends the entries of more not in list yet, keeping
// at most maxRepoDigests.
func mergeRepoDigests(list []string, more []string) []string {
	for _, r := range more {
		if r != "" && !slices.Contains(list, r) {
			list = append(list, r)
		}
	}
	return list[:min(len(list), maxRepoDigests)]
}
