//go:build linux

package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// Reading many small files costs system calls more than bytes: open,
// flistxattr, read and close for every file. While the walk writes a run
// of a directory's non-directory entries, a prefetcher goroutine opens and
// reads the run's small files ahead of it, in order, so those calls
// overlap with tar writing, hashing and compression on another core. The
// tar is the same with or without it.
//
// Files are read in chunks (up to chunkFiles files sharing one chunkSize
// buffer) so that the goroutines hand over once per chunk, not once per
// file: on a VM a wakeup costs as much as reading a small file. At most
// chunkBuffers chunks exist (8 MiB); a run stops at the next directory, so
// only one run is prefetched at a time and its workers never wait on a
// buffer that the walk could only free after descending somewhere else.

const (
	prefetchMax  = 256 << 10 // larger files are streamed by the walk itself
	chunkSize    = 1 << 20
	chunkFiles   = 64
	chunkBuffers = 8
)

// chunk is a group of consecutive small files read ahead together.
type chunk struct {
	nodes []*node
	ready chan struct{} // closed once every node is read (or one failed)
	buf   []byte        // from the pool; nodes' data in order
	left  int           // nodes not yet written (walk goroutine only)
}

// fetched is one file read ahead: buf[off:off+size] of its chunk.
type fetched struct {
	chunk *chunk
	off   int
	recs  map[string]string // kept xattrs as PAX records
	err   error
}

// prefetchWorkers is how many goroutines read ahead. Their work is system
// calls, so two keep pace with a walk that hashes (and, with pgzip,
// compresses) on the other cores.
const prefetchWorkers = 2

// prefetchJob is the work of one run, shared by its workers.
type prefetchJob struct {
	mu     sync.Mutex // guards next, and the differ's pool allocation
	chunks []*chunk
	next   int
	stop   chan struct{}
}

// emitRun emits a run of non-directory nodes, prefetching their small
// regular files when another core can do it.
func (d *differ) emitRun(run []*node) error {
	if chunks := d.planChunks(run); len(chunks) > 0 {
		job := &prefetchJob{chunks: chunks, stop: make(chan struct{})}
		var wg sync.WaitGroup
		for range min(prefetchWorkers, len(chunks)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.prefetch(job)
			}()
		}
		defer func() {
			close(job.stop)
			wg.Wait()
		}()
	}
	for _, n := range run {
		if err := d.emitChecked(n); err != nil {
			return err
		}
	}
	return nil
}

// planChunks groups the run's small, singly linked regular files into
// chunks and marks them as prefetched. Nothing is planned on one core, or
// for fewer than two files (there would be nothing to overlap).
func (d *differ) planChunks(run []*node) []*chunk {
	if runtime.GOMAXPROCS(0) < 2 {
		return nil
	}
	var chunks []*chunk
	var cur *chunk
	size, count := 0, 0
	for _, n := range run {
		if n.whiteout || n.st.Mode&unix.S_IFMT != unix.S_IFREG || n.st.Size == 0 || n.st.Size > prefetchMax || n.st.Nlink != 1 {
			continue
		}
		if cur == nil || size+int(n.st.Size) > chunkSize || len(cur.nodes) == chunkFiles {
			cur = &chunk{ready: make(chan struct{})}
			chunks = append(chunks, cur)
			size = 0
		}
		n.pre = &fetched{chunk: cur, off: size}
		cur.nodes = append(cur.nodes, n)
		size += int(n.st.Size)
		count++
	}
	if count < 2 {
		for _, c := range chunks {
			for _, n := range c.nodes {
				n.pre = nil
			}
		}
		return nil
	}
	for _, c := range chunks {
		c.left = len(c.nodes)
	}
	return chunks
}

// prefetch reads chunks until there are none left or the run is over.
func (d *differ) prefetch(job *prefetchJob) {
	var xb xattrBuf
	for {
		c := d.take(job)
		if c == nil {
			return
		}
		for _, n := range c.nodes {
			f := n.pre
			if f.recs, f.err = d.readAhead(n, c.buf[f.off:f.off+int(n.st.Size)], &xb); f.err != nil {
				break // the walk stops at this node
			}
		}
		close(c.ready)
	}
}

// take hands out the next chunk with a buffer, or nil when there is none
// left or the run is over. Buffers are handed out in chunk order, under
// the lock, and the walk gives them back in chunk order: so the earliest
// chunk the walk waits for always gets one, and two workers cannot starve
// each other.
func (d *differ) take(job *prefetchJob) *chunk {
	job.mu.Lock()
	defer job.mu.Unlock()
	if job.next == len(job.chunks) {
		return nil
	}
	c := job.chunks[job.next]
	select {
	case c.buf = <-d.pool:
	default:
		if d.allocated < chunkBuffers {
			d.allocated++
			c.buf = make([]byte, chunkSize)
			break
		}
		select {
		case c.buf = <-d.pool:
		case <-job.stop:
			return nil
		}
	}
	job.next++
	return c
}

// readAhead reads a whole regular file and its kept xattrs.
func (d *differ) readAhead(n *node, data []byte, xb *xattrBuf) (map[string]string, error) {
	fd, err := d.open(n)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if n.xattrs, err = xb.listFD(fd); err != nil {
		return nil, fmt.Errorf("%s: %w", n.rel, err)
	}
	recs, err := xattrRecords(n, fd, xb)
	if err != nil {
		return nil, err
	}
	for off := 0; off < len(data); {
		m, err := unix.Read(fd, data[off:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", n.rel, err)
		}
		if m == 0 {
			return nil, fmt.Errorf("read %s: file shrank while being read", n.rel)
		}
		off += m
	}
	return recs, nil
}

// emitFetched writes a prefetched file; the last file of a chunk gives the
// chunk's buffer back.
func (d *differ) emitFetched(n *node, hdr *tar.Header) error {
	f := n.pre
	<-f.chunk.ready
	if f.err != nil {
		return f.err
	}
	hdr.PAXRecords = f.recs
	if err := d.writeHeader(hdr, n); err != nil {
		return err
	}
	if _, err := d.tw.Write(f.chunk.buf[f.off : f.off+int(n.st.Size)]); err != nil {
		return fmt.Errorf("write %s: %w", n.rel, err)
	}
	if f.chunk.left--; f.chunk.left == 0 {
		d.pool <- f.chunk.buf
		f.chunk.buf = nil
	}
	if d.normalize {
		return d.normalizeNode(n, hdr.ModTime)
	}
	return nil
}
