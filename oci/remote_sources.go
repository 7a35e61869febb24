package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// Blob sources: where blobs are known to exist besides the store. The
// record lets an image refer to a layer whose bytes stay in a registry
// until something needs them (a lazy pull, a cache hit), lets a push mount
// a blob from another repository of the same registry instead of uploading
// it, and tells [Store.FetchBlob] where to look.

const (
	remoteDir        = "remote"       // <root>/remote/
	sourcesFile      = "sources.json" // <root>/remote/sources.json
	sourcesLockFile  = "lock"         // <root>/remote/lock
	maxSourcesPerKey = 8              // repositories kept per blob, most recent first
	// LayoutSourcePrefix marks a blob source that is an OCI image layout
	// directory ("oci:/path/to/dir") rather than a registry repository.
	LayoutSourcePrefix = "oci:"
)

// sourcesDoc is sources.json.
type sourcesDoc struct {
	Blobs map[string]*sourceRecord `json:"blobs"` // by digest ("sha256:…")
}

type sourceRecord struct {
	Size      int64           `json:"size"`
	MediaType types.MediaType `json:"mediaType,omitempty"`
	Repos     []string        `json:"repos"` // most recent first
}

// RemoteBlob is what the store knows about a blob's copies elsewhere.
type RemoteBlob struct {
	Descriptor v1.Descriptor // digest, size and media type as recorded
	Repos      []string      // registry repositories or "oci:DIR", most recent first
}

func (s *Store) sourcesPath() string { return filepath.Join(s.root, remoteDir, sourcesFile) }

// readSources reads sources.json; writers replace it by rename, so no
// lock is needed.
func (s *Store) readSources() (*sourcesDoc, error) {
	doc := &sourcesDoc{Blobs: map[string]*sourceRecord{}}
	b, err := os.ReadFile(s.sourcesPath())
	if errors.Is(err, fs.ErrNotExist) {
		return doc, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read blob sources: %w", err)
	}
	if err := json.Unmarshal(b, doc); err != nil {
		return nil, fmt.Errorf("parse %s: %w: %w", s.sourcesPath(), ErrInvalid, err)
	}
	if doc.Blobs == nil {
		doc.Blobs = map[string]*sourceRecord{}
	}
	return doc, nil
}

// updateSources applies fn to sources.json under an exclusive lock and
// replaces the file atomically if fn reports a change.
func (s *Store) updateSources(ctx context.Context, fn func(*sourcesDoc) bool) error {
	dir := filepath.Join(s.root, remoteDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("update blob sources: %w", err)
	}
	lf, err := os.OpenFile(filepath.Join(dir, sourcesLockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("update blob sources: %w", err)
	}
	defer lf.Close() // drops the lock, after the rename
	if err := waitLock(ctx, lf, lockExclusive, s.log, lf.Name()); err != nil {
		return fmt.Errorf("update blob sources: %w", err)
	}
	doc, err := s.readSources()
	if err != nil {
		return err
	}
	if !fn(doc) {
		return nil
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode blob sources: %w", err)
	}
	return s.writeFileAtomic(s.sourcesPath(), b)
}

// normalizeSource spells a source the one way records use: a normalized
// repository, or "oci:" and an absolute directory.
func normalizeSource(src string) (string, error) {
	if dir, ok := strings.CutPrefix(src, LayoutSourcePrefix); ok {
		if dir == "" {
			return "", fmt.Errorf("blob source %q: %w: no directory", src, ErrInvalid)
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", fmt.Errorf("blob source %q: %w", src, err)
		}
		return LayoutSourcePrefix + abs, nil
	}
	return normalizeRepo(src)
}

// AddBlobSource records that the blobs descs exist in repo: a registry
// repository ("127.0.0.1:5000/app", normalized like [ParseName]) or an OCI
// image layout ("oci:DIR"). With the record, an image may refer to a layer
// that is not in the store (fsck and [Store.PutImage] accept it),
// [Store.FetchBlob] knows where to get it, and a push to the same registry
// mounts it instead of uploading. Recording a source again moves it to the
// front; each blob keeps its few most recent sources. Idempotent.
func (s *Store) AddBlobSource(ctx context.Context, repo string, descs ...v1.Descriptor) error {
	src, err := normalizeSource(repo)
	if err != nil {
		return fmt.Errorf("add blob source: %w", err)
	}
	for _, d := range descs {
		if err := checkHash(d.Digest); err != nil {
			return fmt.Errorf("add blob source %s: %w", src, err)
		}
	}
	return s.updateSources(ctx, func(doc *sourcesDoc) bool {
		changed := false
		for _, d := range descs {
			key := d.Digest.String()
			rec := doc.Blobs[key]
			if rec == nil {
				rec = &sourceRecord{}
				doc.Blobs[key] = rec
			}
			if rec.Size != d.Size || (d.MediaType != "" && rec.MediaType != d.MediaType) {
				rec.Size = d.Size
				if d.MediaType != "" {
					rec.MediaType = d.MediaType
				}
				changed = true
			}
			if len(rec.Repos) > 0 && rec.Repos[0] == src {
				continue
			}
			repos := append([]string{src}, slices.DeleteFunc(rec.Repos, func(r string) bool { return r == src })...)
			rec.Repos = repos[:min(len(repos), maxSourcesPerKey)]
			changed = true
		}
		return changed
	})
}

// RemoteBlob returns what the store knows about copies of blob h elsewhere;
// ok is false when nothing is recorded. Whether h is also in the store is
// [Store.HasBlob]'s business.
func (s *Store) RemoteBlob(h v1.Hash) (RemoteBlob, bool, error) {
	doc, err := s.readSources()
	if err != nil {
		return RemoteBlob{}, false, err
	}
	rec := doc.Blobs[h.String()]
	if rec == nil || len(rec.Repos) == 0 {
		return RemoteBlob{}, false, nil
	}
	return RemoteBlob{
		Descriptor: v1.Descriptor{Digest: h, Size: rec.Size, MediaType: rec.MediaType},
		Repos:      slices.Clone(rec.Repos),
	}, true, nil
}

// layerSize is the size of layer h: of its blob in the store, else as
// recorded with its remote sources (a lazy layer). A layer that is neither
// is [ErrNotFound].
func (s *Store) layerSize(h v1.Hash) (int64, error) {
	size, err := s.blobSize(h)
	if !errors.Is(err, ErrNotFound) {
		return size, err
	}
	rb, ok, rerr := s.RemoteBlob(h)
	if rerr != nil {
		return 0, errors.Join(err, rerr)
	}
	if !ok {
		return 0, err
	}
	return rb.Descriptor.Size, nil
}

// pruneSources forgets the sources of blobs that keep does not hold; GC
// calls it with what it keeps.
func (s *Store) pruneSources(ctx context.Context, keep map[v1.Hash]bool) error {
	if _, err := os.Stat(s.sourcesPath()); errors.Is(err, fs.ErrNotExist) {
		return nil // nothing recorded: do not create remote/ for nothing
	}
	return s.updateSources(ctx, func(doc *sourcesDoc) bool {
		changed := false
		for key := range doc.Blobs {
			h, err := v1.NewHash(key)
			if err != nil || !keep[h] {
				delete(doc.Blobs, key)
				changed = true
			}
		}
		return changed
	})
}

// FetchOptions is a request to [Store.FetchBlob] and [Store.FetchImage].
// The zero value tries the recorded sources, silently.
type FetchOptions struct {
	// Repo is tried first: a registry repository or "oci:DIR". It need
	// not be recorded.
	Repo string
	// Jobs bounds parallel downloads in FetchImage; 0 means 4.
	Jobs int
	// Progress, if set, hears about each blob; calls are serialized.
	Progress func(BlobProgress)
	// Log, if set, hears about sources that failed before one worked.
	Log *slog.Logger
}

// FetchBlob makes sure blob h is in the store. If it is there, nothing
// happens. Otherwise its bytes come from opts.Repo or the sources recorded
// by [Store.AddBlobSource], most recent first, through an ingest that
// verifies digest and recorded size before the blob becomes visible, so a
// failed fetch leaves nothing behind; a transfer that breaks is retried.
// Concurrent fetches of one blob in one Store share a download. With no
// source known the error wraps [ErrNotFound]; otherwise it joins each
// source's *RemoteError.
func (s *Store) FetchBlob(ctx context.Context, h v1.Hash, opts FetchOptions) error {
	if err := checkHash(h); err != nil {
		return fmt.Errorf("fetch blob: %w", err)
	}
	if s.HasBlob(h) {
		return nil
	}
	_, err, _ := s.remote.fetches.Do(h.String(), func() (any, error) {
		return nil, s.fetchBlob(ctx, h, opts)
	})
	return err
}

func (s *Store) fetchBlob(ctx context.Context, h v1.Hash, opts FetchOptions) error {
	if s.HasBlob(h) {
		return nil
	}
	rb, _, err := s.RemoteBlob(h)
	if err != nil {
		return err
	}
	d := rb.Descriptor
	if d.Digest != h {
		d = v1.Descriptor{Digest: h, Size: -1}
	}
	srcs := rb.Repos
	if opts.Repo != "" {
		first, err := normalizeSource(opts.Repo)
		if err != nil {
			return fmt.Errorf("fetch blob %s: %w", h, err)
		}
		srcs = append([]string{first}, slices.DeleteFunc(srcs, func(r string) bool { return r == first })...)
	}
	if len(srcs) == 0 {
		return fmt.Errorf("fetch blob %s: %w: no registry or layout is known to have it", h, ErrNotFound)
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rep := newReporter(opts.Progress)
	var errs []error
	for _, src := range srcs {
		err := s.fetchFrom(ctx, src, d, rep)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		log.Warn("fetch blob failed", "digest", h, "source", src, "err", err)
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// fetchFrom stores blob d from one source.
func (s *Store) fetchFrom(ctx context.Context, src string, d v1.Descriptor, rep *reporter) error {
	if dir, ok := strings.CutPrefix(src, LayoutSourcePrefix); ok {
		if err := s.copyFromLayout(ctx, dir, d, rep); err != nil {
			return fmt.Errorf("fetch blob %s from %s: %w", d.Digest, src, err)
		}
		return nil
	}
	repo, err := s.remote.repository(src)
	if err != nil {
		return fmt.Errorf("fetch blob %s: %w", d.Digest, err)
	}
	p, err := remote.NewPuller(s.remote.options(ctx, 1)...)
	if err != nil {
		return remoteErr("fetch", src, repo, "blob", d.Digest, err)
	}
	return remoteErr("fetch", src, repo, "blob", d.Digest, s.download(ctx, p, repo, d, rep))
}

// FetchImage makes every layer of the image ref (see [Store.Resolve]) that
// is only known remotely local, with up to opts.Jobs downloads at once (see
// [Store.FetchBlob]). Manifests and configs are always local already.
func (s *Store) FetchImage(ctx context.Context, ref string, opts FetchOptions) error {
	d, err := s.Resolve(ref)
	if err != nil {
		return fmt.Errorf("fetch image: %w", err)
	}
	var missing []v1.Hash
	err = walkGraph(ctx, d, s.readVerified, func(b v1.Descriptor, kind blobKind, _ []byte, _ *v1.Manifest) error {
		if kind == kindLayer && !s.HasBlob(b.Digest) {
			missing = append(missing, b.Digest)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("fetch image %s: %w", ref, err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobsOr(opts.Jobs))
	for _, h := range missing {
		g.Go(func() error { return s.FetchBlob(gctx, h, opts) })
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("fetch image %s: %w", ref, err)
	}
	return nil
}

// download stores blob d of repo, fetched through p: streamed into an
// ingest, verified, committed. A transfer that breaks midway starts again
// with a fresh ingest (go-containerregistry retries failed requests, not
// bodies cut short).
func (s *Store) download(ctx context.Context, p *remote.Puller, repo name.Repository, d v1.Descriptor, rep *reporter) error {
	var pr *progressReader
	err := s.remote.retryBody(ctx, func(err error) {
		p := BlobProgress{Digest: d.Digest, MediaType: d.MediaType, Size: d.Size, Status: BlobRetrying, Err: err}
		if pr != nil {
			p.Done = pr.p.Done
		}
		rep.report(p)
	}, func() error {
		l, err := p.Layer(ctx, repo.Digest(d.Digest.String()))
		if err != nil {
			return err
		}
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		defer rc.Close()
		pr = newProgressReader(rc, rep, d)
		return s.ingestFrom(ctx, pr, d)
	})
	if err != nil {
		return err
	}
	pr.done()
	return nil
}

// ingestFrom writes blob d from r through a verifying ingest. r is read to
// EOF, or one byte past d.Size when that is known.
func (s *Store) ingestFrom(ctx context.Context, r io.Reader, d v1.Descriptor) (err error) {
	ing, err := s.NewIngest(ctx)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, ing.Close()) }()
	if d.Size >= 0 {
		r = io.LimitReader(r, d.Size+1)
	}
	if _, err := io.Copy(ing, r); err != nil {
		// go-containerregistry checks the digest at EOF and fails the read:
		// say so with the store's sentinel.
		if d.Size >= 0 && ing.Size() == d.Size && ing.Digest() != d.Digest {
			return fmt.Errorf("content is %s: %w", ing.Digest(), ErrDigestMismatch)
		}
		return err
	}
	if err := ing.Commit(d.Digest, d.Size); err != nil {
		return err
	}
	return nil
}

// copyFromLayout stores blob d from the OCI layout dir.
func (s *Store) copyFromLayout(ctx context.Context, dir string, d v1.Descriptor, rep *reporter) error {
	if err := checkHash(d.Digest); err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(dir, ocispec.ImageBlobsDir, d.Digest.Algorithm, d.Digest.Hex))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob missing from the layout: %w", ErrNotFound)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	pr := newProgressReader(f, rep, d)
	if err := s.ingestFrom(ctx, pr, d); err != nil {
		return err
	}
	pr.done()
	return nil
}
