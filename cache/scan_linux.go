package cache

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

const (
	// bigFile is the size from which a file that must be hashed becomes a
	// task of its own, so one directory of large files uses every worker.
	bigFile = 4 << 20
	// maxQueuedFDs bounds the descriptors held by queued tasks; beyond it
	// a directory is reopened from the root when its turn comes.
	maxQueuedFDs = 256
	// maxHeldFDs bounds the directories kept open between listing them
	// and stat'ing their files; the others are reopened by path.
	maxHeldFDs  = 1024
	readBufSize = 256 << 10
	dirBufSize  = 32 << 10
)

// Scan lists the directory tree under dir as a sorted [File] listing with
// content digests, for cache keys. Symlinks are listed with their target,
// never followed (dir itself may be one). Sockets are left out. Entries
// are chosen by opts.Select; regular files are hashed unless opts.Cache
// has a trustworthy digest (see [StatCache]).
//
// Directories are listed and their entries stat'ed relative to an open
// descriptor of their parent (openat/fstatat with O_NOFOLLOW), in
// parallel; nothing is resolved through a path that could be swapped for
// a symlink. A file that disappears during the scan is left out. Scan
// does not save opts.Cache; the caller does.
//
// It works in two passes so that each entry is built once, in its place
// in the result: the first lists every directory (names only, except
// that subdirectories are stat'ed), then the listing order is fixed, then
// the second pass stats (and if need be hashes) the files of each
// directory straight into their slots. A context of 20,000 files so
// allocates its listing once instead of once per directory and again in
// order, which on a virtual machine, where a page fault costs as much as
// a dozen fstatat calls, is a large part of a no-op build.
func Scan(ctx context.Context, dir string, opts ScanOptions) ([]File, error) {
	rootfd, err := openAt(atFDCWD, dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", dir, err)
	}
	defer syscall.Close(rootfd)
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = runtime.GOMAXPROCS(0)
	}
	s := &scanner{ctx: ctx, opts: opts, rootfd: rootfd, nodes: map[string]*node{}}
	s.cond.L = &s.mu
	root := &node{fd: -1, descend: true}
	s.nodes[""] = root
	rfd, err := syscall.Dup(rootfd)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", dir, err)
	}
	defer s.closeNodes()
	s.push(scanTask{fd: rfd, node: root})
	s.run(jobs)
	if s.err != nil {
		return nil, fmt.Errorf("scan %s: %w", dir, s.err)
	}
	s.out = s.order()
	for _, nd := range s.nodes {
		if nd.files > 0 {
			s.push(scanTask{fd: -1, node: nd, stat: true})
		}
	}
	s.run(jobs)
	if s.err != nil {
		return nil, fmt.Errorf("scan %s: %w", dir, s.err)
	}
	return compact(s.out), nil
}

const atFDCWD = -100 // AT_FDCWD

// node is one directory of the scan.
type node struct {
	// Set when its parent lists it.
	self    *File // its own entry, when selected
	descend bool  // list its children
	// Set when it is listed.
	fd    int   // kept open from listing to stat'ing its files; -1: reopen by path
	kids  []kid // selected children, directories first listed in order
	files int   // kids that are not directories
	gone  bool  // vanished before it could be listed
	rel   string
}

// kid is a selected entry of a directory.
type kid struct {
	// path is the entry's path relative to the scan root; a NUL byte
	// follows it in memory, so its last component can be passed to
	// fstatat as is.
	path string
	pos  int32 // a non-directory's index in the listing (set by order)
	dir  bool  // a subdirectory: nodes[path]
}

// name is the kid's last path component, NUL-terminated.
func (k *kid) name(prefix int) *byte { return unsafe.StringData(k.path[prefix:]) }

// scanTask lists a directory (first pass), stats a directory's files
// (stat), or hashes one big file (hash).
type scanTask struct {
	fd   int // open directory or file; -1: reopen the directory by path
	node *node
	stat bool
	hash bool  // fd is a regular file to hash into out[pos]
	pos  int32 // hash: the file's slot
}

type scanner struct {
	ctx    context.Context
	opts   ScanOptions
	rootfd int
	queued atomic.Int32 // descriptors held by queued tasks
	held   atomic.Int32 // directories held open for the second pass
	bufs   sync.Pool    // *[]byte read buffers for hashing
	out    []File       // the listing, during the second pass

	mu      sync.Mutex
	cond    sync.Cond
	tasks   []scanTask
	pending int // tasks queued or running
	err     error
	nodes   map[string]*node // by directory path ("" is the root)
}

func (s *scanner) push(t scanTask) {
	if t.fd >= 0 {
		s.queued.Add(1)
	}
	s.mu.Lock()
	s.tasks = append(s.tasks, t)
	s.pending++
	s.mu.Unlock()
	s.cond.Signal()
}

// pop returns the newest task (depth first keeps few descriptors open),
// waiting while others run; false when all work is done or failed.
func (s *scanner) pop() (scanTask, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.tasks) == 0 && s.pending > 0 && s.err == nil {
		s.cond.Wait()
	}
	if s.err != nil || len(s.tasks) == 0 {
		return scanTask{}, false
	}
	t := s.tasks[len(s.tasks)-1]
	s.tasks = s.tasks[:len(s.tasks)-1]
	if t.fd >= 0 {
		s.queued.Add(-1)
	}
	return t, true
}

// finish ends a task; a listing task registers the subdirectories it
// found.
func (s *scanner) finish(err error, subdirs []*node) {
	s.mu.Lock()
	if err != nil && s.err == nil {
		s.err = err
	}
	for _, nd := range subdirs {
		s.nodes[nd.rel] = nd
	}
	s.pending--
	if s.pending == 0 || s.err != nil {
		s.cond.Broadcast()
	}
	s.mu.Unlock()
}

// run works on the queued tasks with jobs goroutines until none is left
// or one failed; tasks left over after an error are dropped.
func (s *scanner) run(jobs int) {
	var wg sync.WaitGroup
	for range jobs {
		wg.Go(s.work)
	}
	wg.Wait()
	for _, t := range s.tasks {
		closeFD(t.fd)
	}
	s.tasks = nil
}

func (s *scanner) work() {
	dirBuf := make([]byte, dirBufSize)
	for {
		t, ok := s.pop()
		if !ok {
			return
		}
		if err := s.ctx.Err(); err != nil {
			closeFD(t.fd)
			s.finish(err, nil)
			continue
		}
		switch {
		case t.hash:
			s.finish(s.hash(t.fd, &s.out[t.pos]), nil)
		case t.stat:
			s.finish(s.statFiles(t.node), nil)
		default:
			subdirs, err := s.list(t, dirBuf)
			s.finish(err, subdirs)
		}
	}
}

func closeFD(fd int) {
	if fd >= 0 {
		syscall.Close(fd)
	}
}

// closeNodes closes the directories still held open (after an error).
func (s *scanner) closeNodes() {
	for _, nd := range s.nodes {
		closeFD(nd.fd)
		nd.fd = -1
	}
}

// list lists one directory: reads its xattrs if its own entry is
// selected, then, if it is to be descended, selects its children, stats
// and queues its subdirectories and notes the rest for the second pass.
func (s *scanner) list(t scanTask, buf []byte) (subdirs []*node, err error) {
	nd, fd := t.node, t.fd
	if fd < 0 {
		if fd, err = s.reopen(nd.rel); err != nil {
			nd.gone = true
			return nil, vanished(err)
		}
	}
	keep := false
	defer func() {
		if !keep {
			syscall.Close(fd)
		}
	}()
	if nd.self != nil {
		x, err := fxattrs(fd)
		if err != nil {
			return nil, fmt.Errorf("read xattrs of %s: %w", nd.rel, err)
		}
		nd.self.Xattrs = x
	}
	if !nd.descend {
		return nil, nil
	}
	prefix := 0
	if nd.rel != "" {
		prefix = len(nd.rel) + 1
	}
	var arena []byte // this batch's paths, each NUL-terminated
	batch := func(n, nameBytes int) {
		arena = make([]byte, 0, n*prefix+nameBytes)
		if cap(nd.kids)-len(nd.kids) < n {
			nd.kids = append(make([]kid, 0, len(nd.kids)+n), nd.kids...)
		}
	}
	err = forEachName(fd, buf, batch, func(name []byte, dtype uint8) error {
		start := len(arena)
		if prefix > 0 {
			arena = append(append(arena, nd.rel...), '/')
		}
		arena = append(arena, name...) // with its NUL
		path := unsafe.String(&arena[start], len(arena)-start-1)
		sub, err := s.child(fd, nd, path, dtype)
		if sub != nil {
			subdirs = append(subdirs, sub)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", displayPath(nd.rel), err)
	}
	if nd.files > 0 && s.held.Add(1) <= maxHeldFDs {
		nd.fd, keep = fd, true
	}
	return subdirs, nil
}

// child selects one entry of the directory nd (open as dirfd): a
// subdirectory is stat'ed, given a node and queued; another entry is
// noted for the second pass. d_type spares the stat of entries Select
// rejects, and of every non-directory until the second pass.
func (s *scanner) child(dirfd int, nd *node, path string, dtype uint8) (*node, error) {
	include, descend := true, true
	if s.opts.Select != nil && dtype != syscall.DT_UNKNOWN {
		if include, descend = s.opts.Select(path, dtype == syscall.DT_DIR); !include && !descend {
			return nil, nil
		}
	}
	if dtype != syscall.DT_DIR && dtype != syscall.DT_UNKNOWN {
		if include {
			nd.kids = append(nd.kids, kid{path: path})
			nd.files++
		}
		return nil, nil
	}
	var st syscall.Stat_t
	if err := lstatAtPtr(dirfd, unsafe.StringData(path[len(path)-baseLen(path):]), &st); err != nil {
		return nil, vanished(fmt.Errorf("stat %s: %w", path, err))
	}
	typ := fileType(st.Mode)
	if s.opts.Select != nil && (dtype == syscall.DT_UNKNOWN || typ != TypeDir) {
		include, descend = s.opts.Select(path, typ == TypeDir)
	}
	if typ != TypeDir {
		if include && typ != "" {
			nd.kids = append(nd.kids, kid{path: path})
			nd.files++
		}
		return nil, nil
	}
	if !include && !descend {
		return nil, nil
	}
	sub := &node{fd: -1, rel: path, descend: descend}
	if include {
		sub.self = &File{Path: path, Type: TypeDir, Mode: st.Mode & 0o7777}
	}
	t := scanTask{fd: -1, node: sub}
	if s.queued.Load() < maxQueuedFDs {
		fd, err := openAt(dirfd, path[len(path)-baseLen(path):], openDirFlags)
		if err != nil {
			return nil, vanished(fmt.Errorf("open %s: %w", path, err))
		}
		t.fd = fd
	}
	nd.kids = append(nd.kids, kid{path: path, dir: true})
	s.push(t)
	return sub, nil
}

// baseLen is the length of path's last component.
func baseLen(path string) int { return len(path) - strings.LastIndexByte(path, '/') - 1 }

// statFiles stats the non-directory children of nd into their slots of
// the listing: regular files get their digest from the stat cache, by
// hashing them now, or (big files) by a hash task.
func (s *scanner) statFiles(nd *node) error {
	fd := nd.fd
	nd.fd = -1
	if fd < 0 {
		var err error
		if fd, err = s.reopen(nd.rel); err != nil {
			return vanished(err) // its files stay holes
		}
	}
	defer syscall.Close(fd)
	prefix := 0
	if nd.rel != "" {
		prefix = len(nd.rel) + 1
	}
	var sd statDir
	if s.opts.Cache != nil {
		sd = s.opts.Cache.dir(nd.rel)
	}
	var cached []int32 // slots whose Digest.Hex holds a raw stat cache digest
	for i := range nd.kids {
		k := &nd.kids[i]
		if k.dir {
			continue
		}
		hit, err := s.statFile(fd, k, prefix, sd)
		if err != nil {
			return err
		}
		if hit {
			cached = append(cached, k.pos)
		}
	}
	s.hexDigests(cached)
	return nil
}

// statFile fills the slot of one non-directory; hit says its digest came
// from the stat cache (raw, to be hex-encoded). A vanished entry, a
// socket, or one that became a directory leaves a hole.
func (s *scanner) statFile(dirfd int, k *kid, prefix int, sd statDir) (hit bool, err error) {
	var st syscall.Stat_t
	if err := lstatAtPtr(dirfd, k.name(prefix), &st); err != nil {
		return false, vanished(fmt.Errorf("stat %s: %w", k.path, err))
	}
	typ := fileType(st.Mode)
	if typ == "" || typ == TypeDir {
		return false, nil
	}
	f := &s.out[k.pos]
	*f = File{Path: k.path, Type: typ, Mode: st.Mode & 0o7777}
	name := k.path[prefix:]
	switch typ {
	case TypeFile:
		f.Size = st.Size
		if s.opts.Cache != nil {
			if raw, x, ok := sd.lookup(name, k.path, statOf(&st)); ok {
				f.Digest, f.Xattrs = v1.Hash{Algorithm: "sha256", Hex: raw}, x
				return true, nil
			}
		}
		fd, err := openAt(dirfd, name, openFileFlags)
		if err != nil {
			f.Type = ""
			return false, vanished(fmt.Errorf("open %s: %w", k.path, err))
		}
		if f.Size >= bigFile && s.queued.Load() < maxQueuedFDs {
			s.push(scanTask{fd: fd, hash: true, pos: k.pos})
			return false, nil
		}
		if err := s.hash(fd, f); err != nil {
			f.Type = ""
			return false, err
		}
	case TypeSymlink:
		if f.Linkname, err = readlinkAt(dirfd, name); err != nil {
			f.Type = ""
			return false, vanished(fmt.Errorf("read link %s: %w", k.path, err))
		}
	case TypeChar, TypeBlock:
		f.Rdev = uint64(st.Rdev)
	}
	return false, nil
}

// hexDigests turns the raw digests the stat cache gave the files in the
// slots cached into hex, in one allocation for the directory: they
// pointed into the stat cache's mapped file.
func (s *scanner) hexDigests(cached []int32) {
	if len(cached) == 0 {
		return
	}
	buf := make([]byte, 64*len(cached))
	for k, i := range cached {
		dst := buf[64*k : 64*k+64]
		raw := s.out[i].Digest.Hex
		hex.Encode(dst, unsafe.Slice(unsafe.StringData(raw), len(raw)))
		s.out[i].Digest.Hex = unsafe.String(&dst[0], 64)
	}
}

// hash reads the open regular file fd (and closes it), fills in f's
// digest, size, mode and xattrs, and records them in the stat cache. On
// failure f becomes a hole.
func (s *scanner) hash(fd int, f *File) error {
	defer syscall.Close(fd)
	buf, _ := s.bufs.Get().(*[]byte)
	if buf == nil {
		b := make([]byte, readBufSize)
		buf = &b
	}
	defer s.bufs.Put(buf)
	d, x, st, err := hashFD(s.ctx, fd, *buf)
	if err != nil {
		f.Type = ""
		return fmt.Errorf("hash %s: %w", f.Path, err)
	}
	f.Digest, f.Xattrs, f.Size, f.Mode = d, x, st.Size, st.Mode&0o7777
	if s.opts.Cache != nil {
		s.opts.Cache.Add(f.Path, st, d, x)
	}
	return nil
}

// reopen opens the directory rel by walking it from the root one
// component at a time without following symlinks.
func (s *scanner) reopen(rel string) (int, error) {
	fd, err := syscall.Dup(s.rootfd)
	if err != nil {
		return -1, err
	}
	if rel == "" {
		return fd, nil
	}
	for _, name := range strings.Split(rel, "/") {
		next, err := openAt(fd, name, openDirFlags)
		syscall.Close(fd)
		if err != nil {
			return -1, fmt.Errorf("open %s: %w", rel, err)
		}
		fd = next
	}
	return fd, nil
}

// vanished maps ENOENT, ENOTDIR and ELOOP (an entry removed, or a
// component replaced by a file or symlink, since it was listed) to nil:
// the caller then leaves the entry out.
func vanished(err error) error {
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ELOOP) {
		return nil
	}
	return err
}

// forEachName calls fn for each entry of a directory but . and .., with
// its name as a NUL-terminated slice of buf (valid only during the call)
// and its d_type. Before each batch read from the kernel it calls batch
// with the number of entries in it and the bytes of their names (with
// their NULs): capacity hints.
func forEachName(fd int, buf []byte, batch func(n, nameBytes int), fn func(name []byte, dtype uint8) error) error {
	// struct linux_dirent64 { u64 ino; s64 off; u16 reclen; u8 type; char name[]; }
	const nameOff = 19
	for {
		n, err := syscall.ReadDirent(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n <= 0 {
			return nil
		}
		count, nameBytes := 0, 0
		for off := 0; off < n; {
			reclen := int(binary.NativeEndian.Uint16(buf[off+16:]))
			count++
			nameBytes += reclen - nameOff // an upper bound: names are padded
			off += reclen
		}
		batch(count, nameBytes)
		for off := 0; off < n; {
			reclen := int(binary.NativeEndian.Uint16(buf[off+16:]))
			rec := buf[off : off+reclen]
			off += reclen
			end := bytes.IndexByte(rec[nameOff:], 0)
			if end < 0 {
				return errors.New("malformed directory entry")
			}
			name := rec[nameOff : nameOff+end+1]
			if string(name) == ".\x00" || string(name) == "..\x00" {
				continue
			}
			if err := fn(name, rec[18]); err != nil {
				return err
			}
		}
	}
}

func displayPath(rel string) string {
	if rel == "" {
		return "."
	}
	return rel
}
