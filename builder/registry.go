package builder

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"minibuild/oci"
)

// The registry side of a build: layers that stay in a registry until
// something needs their bytes (lazily pulled bases, imported caches),
// and --push.

// layerAvailable reports whether layer blob h can be had: it is in the
// store, or a registry or layout is known to have it (oci.Store.RemoteBlob),
// from where oci.Store.FetchBlob gets it when its bytes are needed.
func (b *Builder) layerAvailable(h v1.Hash) bool {
	if b.store.HasBlob(h) {
		return true
	}
	_, ok, err := b.store.RemoteBlob(h)
	if err != nil {
		b.log.Warn("read blob sources", "err", err)
	}
	return ok
}

// pushing reports whether the request pushes the image (--push or an
// output of type registry).
func (r Request) pushing() bool {
	if r.Push {
		return true
	}
	for _, o := range r.Outputs {
		if o.Type == "registry" {
			return true
		}
	}
	return false
}

// push uploads the built image to the registry of every tag, one vertex
// per name. Only blobs the repository lacks move (oci.Store.Push): a layer
// known only remotely is mounted from its repository or streamed, never
// stored here first. The manifest goes last, byte for byte, so the
// registry serves the image under res.Manifest's digest; a failure leaves
// the tag as it was and comes back as the *oci.RemoteError naming
// registry, repository and digest.
func (bd *build) push(ctx context.Context, res *Result) error {
	if !bd.req.pushing() {
		return nil
	}
	for _, n := range res.Tags {
		v := bd.ev.internal("pushing " + n)
		_, err := bd.b.store.Push(ctx, res.Manifest.Digest.String(), n, oci.PushOptions{Progress: blobReporter(v, "pushing"), Log: bd.b.log})
		if err == nil {
			v.status("pushed " + n + "@" + res.Manifest.Digest.String())
		}
		v.finish(err)
		if err != nil {
			return err
		}
	}
	return nil
}

// blobReporter turns the blob events of a pull, push or fetch into status
// lines of v: "pushing sha256:… " with byte counts while bytes move, and
// one line for a blob that did not need to ("exists", "mounted … from R",
// "remote"), or a retry.
func blobReporter(v *vertex, verb string) func(oci.BlobProgress) {
	return func(p oci.BlobProgress) {
		d := p.Digest.String()
		switch p.Status {
		case oci.BlobTransferring, oci.BlobDone:
			done := p.Done
			if p.Status == oci.BlobDone && p.Size > 0 {
				done = p.Size
			}
			v.progress(verb+" "+d, done, max(p.Size, 0))
		case oci.BlobExists:
			v.status("exists " + d)
		case oci.BlobMounted:
			v.status("mounted " + d + " from " + p.From)
		case oci.BlobRemote:
			v.status(fmt.Sprintf("remote %s %s (fetched when needed)", d, humanSize(p.Size)))
		case oci.BlobRetrying:
			v.status(fmt.Sprintf("retrying %s: %v", d, p.Err))
		}
	}
}

// progress reports msg with a byte count inside the vertex.
func (v *vertex) progress(msg string, current, total int64) {
	ev := v.event(EventStatus)
	ev.Message, ev.Current, ev.Total = msg, current, total
	v.e.send(ev)
}
