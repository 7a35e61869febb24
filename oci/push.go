package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// PushOptions is a request to [Store.Push] and [Store.PushArtifact]. The
// zero value uploads four blobs at a time, silently.
type PushOptions struct {
	// Jobs bounds parallel blob uploads; 0 means 4.
	Jobs int
	// Progress, if set, hears about each blob: BlobExists (the repository
	// has it), BlobMounted (From), BlobTransferring and BlobDone (uploaded),
	// BlobRetrying. Calls are serialized.
	Progress func(BlobProgress)
	// Log, if set, hears about sources that failed before one worked.
	Log *slog.Logger
}

func (o PushOptions) logger() *slog.Logger {
	if o.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Log
}

// Push uploads the image ref (see [Store.Resolve]) to dest, a tag
// normalized by [ParseName]; dest "" means ref's own name, which must then
// be a tag. The manifest is pushed byte for byte, so the registry has the
// image under the digest the store has.
//
// Only what the repository lacks moves: each blob is checked with a HEAD
// request first; a blob known to exist in another repository of the same
// registry ([Store.AddBlobSource]: a pull, a push, a lazy layer) is
// mounted from there; the others are uploaded, up to opts.Jobs at once.
// A layer the store only knows remotely is never downloaded when the
// repository has it or can mount it, and is streamed from its source
// otherwise. Manifests go last (an index after its children), so the tag
// never names an incomplete image. Transient failures are retried;
// registry failures are *RemoteError. Afterwards every blob is recorded as
// available in dest's repository. It returns the pushed descriptor.
func (s *Store) Push(ctx context.Context, ref, dest string, opts PushOptions) (v1.Descriptor, error) {
	d, err := s.Resolve(ref)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("push: %w", err)
	}
	if dest == "" {
		n, err := parseTagName(ref)
		if err != nil || refName(d) != n {
			return v1.Descriptor{}, fmt.Errorf("push %s: %w: not a tag; name a destination", ref, ErrInvalid)
		}
		dest = n
	}
	dn, err := parseTagName(dest)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("push: %w", err)
	}
	r, err := s.remote.reference(dn)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("push: %w", err)
	}
	var manifests []manifestBlob // parents first, as walkGraph visits them
	var blobs []pushItem
	err = walkGraph(ctx, d, s.readVerified, func(b v1.Descriptor, kind blobKind, data []byte, _ *v1.Manifest) error {
		if kind == kindIndex || kind == kindManifest {
			manifests = append(manifests, manifestBlob{d: b, raw: data})
			return nil
		}
		if !s.HasBlob(b.Digest) {
			if _, ok, err := s.RemoteBlob(b.Digest); err != nil || !ok {
				return errors.Join(err, fmt.Errorf("%s %s: %w: neither in the store nor known in a registry", kind, b.Digest, ErrNotFound))
			}
		}
		blobs = append(blobs, pushItem{d: b, object: kind.String()})
		return nil
	})
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("push %s: %w", ref, err)
	}
	u, err := s.newUploader(ctx, r.Context(), dn, opts)
	if err != nil {
		return v1.Descriptor{}, err
	}
	if err := u.blobs(ctx, blobs); err != nil {
		return v1.Descriptor{}, err
	}
	for i := len(manifests) - 1; i > 0; i-- {
		m := manifests[i]
		if err := u.putManifest(ctx, r.Context().Digest(m.d.Digest.String()), m); err != nil {
			return v1.Descriptor{}, err
		}
	}
	if err := u.putManifest(ctx, r, manifests[0]); err != nil {
		return v1.Descriptor{}, err
	}
	descs := make([]v1.Descriptor, len(blobs))
	for i, b := range blobs {
		descs[i] = b.d
	}
	if err := s.AddBlobSource(ctx, u.repoStr, descs...); err != nil {
		return v1.Descriptor{}, fmt.Errorf("push %s: %w", dn, err)
	}
	return v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest}, nil
}

// manifestBlob is a manifest or index and its bytes.
type manifestBlob struct {
	d   v1.Descriptor
	raw []byte
}

var _ remote.Taggable = manifestBlob{}

// RawManifest and MediaType make it a remote.Taggable pushed verbatim.
func (m manifestBlob) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m manifestBlob) MediaType() (types.MediaType, error) { return m.d.MediaType, nil }

// pushItem is one blob to upload: from the store or a source, or data.
type pushItem struct {
	d      v1.Descriptor
	object string // "config", "layer", "blob": for errors
	data   []byte // the bytes, for blobs that are not stored (artifact configs)
}

// uploader pushes blobs and manifests to one repository.
type uploader struct {
	s       *Store
	name    string // the destination as asked, for errors
	repo    name.Repository
	repoStr string // normalized
	pusher  *remote.Pusher
	puller  *remote.Puller // for existence checks
	jobs    int
	rep     *reporter
	log     *slog.Logger
}

func (s *Store) newUploader(ctx context.Context, repo name.Repository, nm string, opts PushOptions) (*uploader, error) {
	p, err := remote.NewPusher(s.remote.options(ctx, opts.Jobs)...)
	if err != nil {
		return nil, remoteErr("push", nm, repo, "", v1.Hash{}, err)
	}
	pl, err := remote.NewPuller(s.remote.options(ctx, opts.Jobs)...)
	if err != nil {
		return nil, remoteErr("push", nm, repo, "", v1.Hash{}, err)
	}
	return &uploader{s: s, name: nm, repo: repo, repoStr: repoName(repo), pusher: p, puller: pl,
		jobs: jobsOr(opts.Jobs), rep: newReporter(opts.Progress), log: opts.logger()}, nil
}

// blobs uploads items in parallel.
func (u *uploader) blobs(ctx context.Context, items []pushItem) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(u.jobs)
	for _, it := range items {
		g.Go(func() error { return u.blob(gctx, it) })
	}
	return g.Wait()
}

// blob makes it exist in the repository: already there, mounted, or
// uploaded (go-containerregistry checks existence first and mounts when
// given a source in the same registry).
func (u *uploader) blob(ctx context.Context, it pushItem) error {
	from := u.mountSource(it.d.Digest)
	if from != "" && u.exists(ctx, it.d.Digest) {
		// Checked here only to tell "exists" from "mounted" apart;
		// go-containerregistry checks again before any upload.
		u.rep.report(BlobProgress{Digest: it.d.Digest, MediaType: it.d.MediaType, Size: it.d.Size, Done: it.d.Size, Status: BlobExists})
		return nil
	}
	b := &pushBlob{u: u, ctx: ctx, it: it}
	var l v1.Layer
	l, err := partial.CompressedToLayer(b)
	if err != nil {
		return remoteErr("push", u.name, u.repo, it.object, it.d.Digest, err)
	}
	if from != "" {
		src, err := u.s.remote.repository(from)
		if err != nil {
			return err
		}
		l = &remote.MountableLayer{Layer: l, Reference: src.Digest(it.d.Digest.String())}
	}
	if err := u.pusher.Upload(ctx, u.repo, l); err != nil {
		return remoteErr("push", u.name, u.repo, it.object, it.d.Digest, err)
	}
	p := BlobProgress{Digest: it.d.Digest, MediaType: it.d.MediaType, Size: it.d.Size, Done: it.d.Size}
	switch {
	case b.opened() > 0:
		p.Status = BlobDone
	case from != "":
		p.Status, p.From = BlobMounted, from
	default:
		p.Status = BlobExists
	}
	u.rep.report(p)
	return nil
}

// mountSource is a repository of the destination's registry the blob is
// known to be in, or "".
func (u *uploader) mountSource(h v1.Hash) string {
	rb, ok, err := u.s.RemoteBlob(h)
	if err != nil || !ok {
		return ""
	}
	reg := registryName(u.repo)
	for _, r := range rb.Repos {
		if r != u.repoStr && !strings.HasPrefix(r, LayoutSourcePrefix) && registryOf(r) == reg {
			return r
		}
	}
	return ""
}

// exists reports whether the repository has blob h; false when the
// registry does not say.
func (u *uploader) exists(ctx context.Context, h v1.Hash) bool {
	l, err := u.puller.Layer(ctx, u.repo.Digest(h.String()))
	if err != nil {
		return false
	}
	ok, err := partial.Exists(l)
	return err == nil && ok
}

func (u *uploader) putManifest(ctx context.Context, r name.Reference, m manifestBlob) error {
	if err := u.pusher.Put(ctx, r, m); err != nil {
		return remoteErr("push", u.name, u.repo, "manifest", m.d.Digest, err)
	}
	return nil
}

// pushBlob is the partial.CompressedLayer go-containerregistry uploads:
// its bytes are opened only if the registry needs them.
type pushBlob struct {
	u   *uploader
	ctx context.Context
	it  pushItem

	mu    sync.Mutex
	opens int
}

var _ partial.CompressedLayer = (*pushBlob)(nil)

func (b *pushBlob) Digest() (v1.Hash, error)            { return b.it.d.Digest, nil }
func (b *pushBlob) Size() (int64, error)                { return b.it.d.Size, nil }
func (b *pushBlob) MediaType() (types.MediaType, error) { return b.it.d.MediaType, nil }

func (b *pushBlob) opened() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.opens
}

// Compressed opens the bytes: the data given, the store's blob, or a
// stream from a source. A second call is a retry of a failed upload.
func (b *pushBlob) Compressed() (io.ReadCloser, error) {
	b.mu.Lock()
	b.opens++
	retry := b.opens > 1
	b.mu.Unlock()
	d := b.it.d
	if retry {
		b.u.rep.report(BlobProgress{Digest: d.Digest, MediaType: d.MediaType, Size: d.Size, Status: BlobRetrying})
	}
	rc, err := b.open()
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{newProgressReader(rc, b.u.rep, d), rc}, nil
}

func (b *pushBlob) open() (io.ReadCloser, error) {
	return b.u.s.openItem(b.ctx, b.it, b.u.log)
}

// openRemote streams blob d from the first of its recorded sources that
// answers; the reader verifies digest and size at EOF.
func (s *Store) openRemote(ctx context.Context, d v1.Descriptor, log *slog.Logger) (io.ReadCloser, error) {
	rb, ok, err := s.RemoteBlob(d.Digest)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("blob %s: %w: neither in the store nor known in a registry", d.Digest, ErrNotFound)
	}
	var errs []error
	for _, src := range rb.Repos {
		rc, err := s.openSource(ctx, src, d)
		if err == nil {
			return rc, nil
		}
		log.Warn("open blob source failed", "digest", d.Digest, "source", src, "err", err)
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func (s *Store) openSource(ctx context.Context, src string, d v1.Descriptor) (io.ReadCloser, error) {
	if dir, ok := strings.CutPrefix(src, LayoutSourcePrefix); ok {
		f, err := os.Open(filepath.Join(dir, ocispec.ImageBlobsDir, d.Digest.Algorithm, d.Digest.Hex))
		if err != nil {
			return nil, fmt.Errorf("open blob %s in %s: %w", d.Digest, src, err)
		}
		return newVerifier(f, d.Digest, d.Size), nil
	}
	repo, err := s.remote.repository(src)
	if err != nil {
		return nil, err
	}
	p, err := remote.NewPuller(s.remote.options(ctx, 1)...)
	if err != nil {
		return nil, remoteErr("fetch", src, repo, "blob", d.Digest, err)
	}
	l, err := p.Layer(ctx, repo.Digest(d.Digest.String()))
	if err != nil {
		return nil, remoteErr("fetch", src, repo, "blob", d.Digest, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, remoteErr("fetch", src, repo, "blob", d.Digest, err)
	}
	return rc, nil
}
