package cache

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"slices"
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
	readBufSize  = 256 << 10
	dirBufSize   = 32 << 10
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
	rfd, err := syscall.Dup(rootfd)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", dir, err)
	}
	s.push(scanTask{fd: rfd, descend: true})
	var wg sync.WaitGroup
	for range jobs {
		wg.Go(s.work)
	}
	wg.Wait()
	for _, t := range s.tasks { // left over after an error
		if t.fd >= 0 {
			syscall.Close(t.fd)
		}
	}
	if s.err != nil {
		return nil, fmt.Errorf("scan %s: %w", dir, s.err)
	}
	return assemble(s.nodes, s.n), nil
}

const atFDCWD = -100 // AT_FDCWD

// scanTask is a directory to list (hash false) or a big file to hash.
type scanTask struct {
	fd      int    // open directory or file; -1: reopen the directory by path
	hash    bool   // fd is a regular file to hash into file
	parent  string // hash: the directory the file is in
	file    File   // the entry to emit (directory: if include)
	include bool
	descend bool
}

type scanner struct {
	ctx    context.Context
	opts   ScanOptions
	rootfd int
	queued atomic.Int32 // descriptors held by queued tasks
	bufs   sync.Pool    // *[]byte read buffers for hashing

	mu      sync.Mutex
	cond    sync.Cond
	tasks   []scanTask
	pending int // tasks queued or running
	err     error
	nodes   map[string]*node // by directory path ("" is the root)
	n       int              // entries found
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

// finish records a task's result: for directory rel, its own entry (if
// any), files and queued subdirectories.
func (s *scanner) finish(err error, rel string, self *File, files []File, dirs []string) {
	s.mu.Lock()
	if err != nil && s.err == nil {
		s.err = err
	}
	if err == nil {
		nd := s.nodes[rel]
		if nd == nil {
			nd = &node{}
			s.nodes[rel] = nd
		}
		if self != nil {
			nd.self = self
			s.n++
		}
		if nd.files == nil {
			nd.files = files // no copy: the usual case, one task per directory
		} else {
			nd.files = append(nd.files, files...)
		}
		nd.dirs = append(nd.dirs, dirs...)
		s.n += len(files)
	}
	s.pending--
	if s.pending == 0 || s.err != nil {
		s.cond.Broadcast()
	}
	s.mu.Unlock()
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
			s.finish(err, "", nil, nil, nil)
			continue
		}
		if t.hash {
			err := s.hash(t.fd, &t.file)
			s.finish(err, t.parent, nil, []File{t.file}, nil)
			continue
		}
		self, files, dirs, err := s.dir(t, dirBuf)
		s.finish(err, t.file.Path, self, files, dirs)
	}
}

func closeFD(fd int) {
	if fd >= 0 {
		syscall.Close(fd)
	}
}

// dir lists one directory: its own entry (with xattrs) if included, and
// if descending, its children: files are returned, subdirectories and big
// files queued (dirs names the subdirectories).
func (s *scanner) dir(t scanTask, buf []byte) (self *File, files []File, dirs []string, err error) {
	fd := t.fd
	if fd < 0 {
		if fd, err = s.reopen(t.file.Path); err != nil {
			return nil, nil, nil, vanished(err)
		}
	}
	defer syscall.Close(fd)
	if t.include {
		x, err := fxattrs(fd)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("read xattrs of %s: %w", t.file.Path, err)
		}
		t.file.Xattrs = x
		self = &t.file
	}
	if !t.descend {
		return self, nil, nil, nil
	}
	var sd statDir
	if s.opts.Cache != nil {
		sd = s.opts.Cache.dir(t.file.Path)
	}
	var cached []int // files whose Digest.Hex holds a raw stat cache digest
	err = forEachName(fd, buf, func(n int) { files = slices.Grow(files, n) }, func(name []byte, dtype uint8) error {
		f, what, err := s.entry(fd, t.file.Path, name, dtype, sd)
		switch what {
		case entryCached:
			cached = append(cached, len(files))
			files = append(files, f)
		case entryFile:
			files = append(files, f)
		case entryDir:
			dirs = append(dirs, f.Path[len(f.Path)-len(name)+1:])
		}
		return err
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list %s: %w", displayPath(t.file.Path), err)
	}
	hexDigests(files, cached)
	return self, files, dirs, nil
}

// hexDigests turns the raw digests the stat cache gave files[i], i in
// cached, into hex in one allocation for the directory: they pointed
// into the stat cache's mapped file.
func hexDigests(files []File, cached []int) {
	if len(cached) == 0 {
		return
	}
	buf := make([]byte, 64*len(cached))
	for k, i := range cached {
		dst := buf[64*k : 64*k+64]
		raw := files[i].Digest.Hex
		hex.Encode(dst, unsafe.Slice(unsafe.StringData(raw), len(raw)))
		files[i].Digest.Hex = unsafe.String(&dst[0], 64)
	}
}

// entryKind says what became of a directory entry.
type entryKind int

const (
	entrySkipped entryKind = iota // not selected, or vanished
	entryFile                     // returned for the listing
	entryCached                   // entryFile, with a raw digest to hex-encode
	entryDir                      // queued as a directory task
	entryQueued                   // queued as a hash task
)

// entry stats one child and returns its listing entry (entryFile), or
// says it was skipped or queued. name is the NUL-terminated name inside
// the directory buffer, dtype its d_type (which spares the stat of
// entries Select rejects).
func (s *scanner) entry(dirfd int, parent string, name []byte, dtype uint8, sd statDir) (File, entryKind, error) {
	rel := joinRel(parent, string(name[:len(name)-1]))
	include, descend := true, true
	if s.opts.Select != nil && dtype != syscall.DT_UNKNOWN {
		if include, descend = s.opts.Select(rel, dtype == syscall.DT_DIR); !include && !descend {
			return File{}, entrySkipped, nil
		}
	}
	var st syscall.Stat_t
	if err := lstatAtPtr(dirfd, &name[0], &st); err != nil {
		return File{}, entrySkipped, vanished(fmt.Errorf("stat %s: %w", rel, err))
	}
	typ := fileType(st.Mode)
	if typ == "" {
		return File{}, entrySkipped, nil
	}
	if s.opts.Select != nil && (dtype == syscall.DT_UNKNOWN || (dtype == syscall.DT_DIR) != (typ == TypeDir)) {
		include, descend = s.opts.Select(rel, typ == TypeDir)
	}
	descend = descend && typ == TypeDir
	if !include && !descend {
		return File{}, entrySkipped, nil
	}
	f := File{Path: rel, Type: typ, Mode: st.Mode & 0o7777}
	base := rel[len(rel)-len(name)+1:]
	var err error
	switch typ {
	case TypeDir:
		if queued, err := s.queueDir(dirfd, base, f, include, descend); !queued {
			return File{}, entrySkipped, err
		}
		return f, entryDir, nil
	case TypeFile:
		f.Size = st.Size
		return s.file(dirfd, parent, base, f, statOf(&st), sd)
	case TypeSymlink:
		if f.Linkname, err = readlinkAt(dirfd, base); err != nil {
			return File{}, entrySkipped, vanished(fmt.Errorf("read link %s: %w", rel, err))
		}
	case TypeChar, TypeBlock:
		f.Rdev = uint64(st.Rdev)
	}
	return f, entryFile, nil
}

// queueDir queues a subdirectory, opened now relative to its parent
// unless too many descriptors are queued already. queued is false if it
// vanished.
func (s *scanner) queueDir(dirfd int, name string, f File, include, descend bool) (queued bool, err error) {
	t := scanTask{fd: -1, file: f, include: include, descend: descend}
	if s.queued.Load() < maxQueuedFDs {
		fd, err := openAt(dirfd, name, openDirFlags)
		if err != nil {
			return false, vanished(fmt.Errorf("open %s: %w", f.Path, err))
		}
		t.fd = fd
	}
	s.push(t)
	return true, nil
}

// file fills in a regular file's digest: from the stat cache, by hashing
// it now, or (big files) by queueing a hash task.
func (s *scanner) file(dirfd int, parent, name string, f File, st Stat, sd statDir) (File, entryKind, error) {
	if s.opts.Cache != nil {
		if raw, x, ok := sd.lookup(name, f.Path, st); ok {
			f.Digest, f.Xattrs = v1.Hash{Algorithm: "sha256", Hex: raw}, x
			return f, entryCached, nil
		}
	}
	fd, err := openAt(dirfd, name, openFileFlags)
	if err != nil {
		return File{}, entrySkipped, vanished(fmt.Errorf("open %s: %w", f.Path, err))
	}
	if f.Size >= bigFile && s.queued.Load() < maxQueuedFDs {
		s.push(scanTask{fd: fd, hash: true, parent: parent, file: f})
		return File{}, entryQueued, nil
	}
	if err := s.hash(fd, &f); err != nil {
		return File{}, entrySkipped, err
	}
	return f, entryFile, nil
}

// hash reads the open regular file fd (and closes it), fills in f's
// digest, size, mode and xattrs, and records them in the stat cache.
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
// with the number of entries in it (a capacity hint).
func forEachName(fd int, buf []byte, batch func(n int), fn func(name []byte, dtype uint8) error) error {
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
		count := 0
		for off := 0; off < n; off += int(binary.NativeEndian.Uint16(buf[off+16:])) {
			count++
		}
		batch(count)
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
