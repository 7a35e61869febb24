package oci

import (
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BlobStatus is what happened, or is happening, to one blob of a pull, a
// push or a fetch.
type BlobStatus string

// The states a [BlobProgress] reports.
const (
	// BlobTransferring: bytes are moving; Done counts them. Reported when
	// a transfer starts (Done 0) and then about every MiB.
	BlobTransferring BlobStatus = "transferring"
	// BlobDone: transferred completely (and, on the way in, verified).
	BlobDone BlobStatus = "done"
	// BlobExists: already at the destination (the store for a pull, the
	// repository for a push); nothing moved.
	BlobExists BlobStatus = "exists"
	// BlobMounted: a push mounted the blob from another repository of the
	// same registry (From); nothing moved.
	BlobMounted BlobStatus = "mounted"
	// BlobRemote: a lazy pull recorded the layer as available in the
	// registry without fetching it (see [PullOptions.Lazy]).
	BlobRemote BlobStatus = "remote"
	// BlobRetrying: a transfer broke (Err says how) and starts again.
	BlobRetrying BlobStatus = "retrying"
)

// BlobProgress reports on one blob of a transfer.
type BlobProgress struct {
	Digest    v1.Hash
	MediaType types.MediaType
	Size      int64 // bytes; -1 if unknown
	Done      int64 // bytes transferred so far
	Status    BlobStatus
	From      string // BlobMounted: the repository the blob was mounted from
	Err       error  // BlobRetrying: why the last attempt failed
}

// reporter passes progress to a caller's callback, one call at a time.
type reporter struct {
	mu sync.Mutex
	fn func(BlobProgress)
}

func newReporter(fn func(BlobProgress)) *reporter { return &reporter{fn: fn} }

func (r *reporter) report(p BlobProgress) {
	if r == nil || r.fn == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fn(p)
}

// progressEvery is how many bytes pass between two BlobTransferring reports.
const progressEvery = 1 << 20

// progressReader reports the bytes read through it.
type progressReader struct {
	r        io.Reader
	rep      *reporter
	p        BlobProgress
	reported int64
}

func newProgressReader(r io.Reader, rep *reporter, d v1.Descriptor) *progressReader {
	pr := &progressReader{r: r, rep: rep, p: BlobProgress{Digest: d.Digest, MediaType: d.MediaType, Size: d.Size, Status: BlobTransferring}}
	rep.report(pr.p)
	return pr
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.p.Done += int64(n)
	if pr.p.Done-pr.reported >= progressEvery {
		pr.reported = pr.p.Done
		pr.rep.report(pr.p)
	}
	return n, err
}

// done reports the transfer complete.
func (pr *progressReader) done() {
	p := pr.p
	p.Status = BlobDone
	pr.rep.report(p)
}
