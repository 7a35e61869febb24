package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
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
	s := &scanner{ctx: ctx, opts: opts, rootfd: rootfd}
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
	return gatherSorted(s.chunks, s.n), nil
}

const atFDCWD = -100 // AT_FDCWD

// gatherSorted concatenates the chunks in path order. It sorts pointers,
// not the 100-byte File values, and copies each value once.
func gatherSorted(chunks [][]File, n int) []File {
	ptrs := make([]*File, 0, n)
	for _, c := range chunks {
		for i := range c {
			ptrs = append(ptrs, &c[i])
		}
	}
	slices.SortFunc(ptrs, func(a, b *File) int { return strings.Compare(a.Path, b.Path) })
	files := make([]File, len(ptrs))
	for i, p := range ptrs {
		files[i] = *p
	}
	return files
}

// scanTask is a directory to list (hash false) or a big file to hash.
type scanTask struct {
	fd      int  // open directory or file; -1: reopen the directory by path
	hash    bool // fd is a regular file to hash into file
	file    File // the entry to emit (directory: if include)
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
	chunks  [][]File
	n       int
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

func (s *scanner) finish(err error, files ...File) {
	s.mu.Lock()
	if err != nil && s.err == nil {
		s.err = err
	}
	if len(files) > 0 {
		s.chunks = append(s.chunks, files)
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
			s.finish(err)
			continue
		}
		if t.hash {
			err := s.hash(t.fd, &t.file)
			s.finish(err, t.file)
			continue
		}
		files, err := s.dir(t, dirBuf)
		s.finish(err, files...)
	}
}

func closeFD(fd int) {
	if fd >= 0 {
		syscall.Close(fd)
	}
}

// dir lists one directory: its own entry (with xattrs) if included, and
// if descending, every child, queueing subdirectories and big files.
func (s *scanner) dir(t scanTask, buf []byte) ([]File, error) {
	fd := t.fd
	if fd < 0 {
		var err error
		if fd, err = s.reopen(t.file.Path); err != nil {
			return nil, vanished(err)
		}
	}
	defer syscall.Close(fd)
	var out []File
	if t.include {
		x, err := fxattrs(fd)
		if err != nil {
			return nil, fmt.Errorf("read xattrs of %s: %w", t.file.Path, err)
		}
		t.file.Xattrs = x
		out = append(out, t.file)
	}
	if !t.descend {
		return out, nil
	}
	err := forEachName(fd, buf, func(name []byte, dtype uint8) error {
		f, keep, err := s.entry(fd, t.file.Path, name, dtype)
		if keep {
			out = append(out, f)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", displayPath(t.file.Path), err)
	}
	return out, nil
}

// entry stats one child and returns its listing entry, or keep=false
// when it is not selected, vanished, or was queued as a task. name is
// the NUL-terminated name inside the directory buffer, dtype its d_type
// (which spares the stat of entries Select rejects).
func (s *scanner) entry(dirfd int, parent string, name []byte, dtype uint8) (f File, keep bool, err error) {
	var rel string
	if parent == "" {
		rel = string(name[:len(name)-1])
	} else {
		rel = parent + "/" + string(name[:len(name)-1])
	}
	include, descend := true, true
	if s.opts.Select != nil && dtype != syscall.DT_UNKNOWN {
		if include, descend = s.opts.Select(rel, dtype == syscall.DT_DIR); !include && !descend {
			return File{}, false, nil
		}
	}
	var st syscall.Stat_t
	if err := lstatAtPtr(dirfd, &name[0], &st); err != nil {
		return File{}, false, vanished(fmt.Errorf("stat %s: %w", rel, err))
	}
	typ := fileType(st.Mode)
	if typ == "" {
		return File{}, false, nil
	}
	if s.opts.Select != nil && (dtype == syscall.DT_UNKNOWN || (dtype == syscall.DT_DIR) != (typ == TypeDir)) {
		include, descend = s.opts.Select(rel, typ == TypeDir)
	}
	descend = descend && typ == TypeDir
	if !include && !descend {
		return File{}, false, nil
	}
	f = File{Path: rel, Type: typ, Mode: st.Mode & 0o7777}
	base := rel[len(rel)-len(name)+1:]
	switch typ {
	case TypeDir:
		return File{}, false, s.queueDir(dirfd, base, f, include, descend)
	case TypeFile:
		f.Size = st.Size
		return s.file(dirfd, base, f, statOf(&st))
	case TypeSymlink:
		if f.Linkname, err = readlinkAt(dirfd, base); err != nil {
			return File{}, false, vanished(fmt.Errorf("read link %s: %w", rel, err))
		}
	case TypeChar, TypeBlock:
		f.Rdev = uint64(st.Rdev)
	}
	return f, true, nil
}

// queueDir queues a subdirectory, opened now relative to its parent
// unless too many descriptors are queued already.
func (s *scanner) queueDir(dirfd int, name string, f File, include, descend bool) error {
	t := scanTask{fd: -1, file: f, include: include, descend: descend}
	if s.queued.Load() < maxQueuedFDs {
		fd, err := openAt(dirfd, name, openDirFlags)
		if err != nil {
			return vanished(fmt.Errorf("open %s: %w", f.Path, err))
		}
		t.fd = fd
	}
	s.push(t)
	return nil
}

// file fills in a regular file's digest: from the stat cache, by hashing
// it now, or (big files) by queueing a hash task (keep=false).
func (s *scanner) file(dirfd int, name string, f File, st Stat) (File, bool, error) {
	if s.opts.Cache != nil {
		if d, x, ok := s.opts.Cache.Lookup(f.Path, st); ok {
			f.Digest, f.Xattrs = d, x
			return f, true, nil
		}
	}
	fd, err := openAt(dirfd, name, openFileFlags)
	if err != nil {
		return File{}, false, vanished(fmt.Errorf("open %s: %w", f.Path, err))
	}
	if f.Size >= bigFile && s.queued.Load() < maxQueuedFDs {
		s.push(scanTask{fd: fd, hash: true, file: f})
		return File{}, false, nil
	}
	if err := s.hash(fd, &f); err != nil {
		return File{}, false, err
	}
	return f, true, nil
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

// hashFD hashes an open regular file and reads its xattrs, retrying when
// its stat data changes meanwhile; st is the stat data the result is
// valid for.
func hashFD(ctx context.Context, fd int, buf []byte) (d v1.Hash, x map[string]string, st Stat, err error) {
	for range 3 {
		var before, after syscall.Stat_t
		if err := syscall.Fstat(fd, &before); err != nil {
			return v1.Hash{}, nil, Stat{}, err
		}
		if fileType(before.Mode) != TypeFile {
			return v1.Hash{}, nil, Stat{}, ErrChanged
		}
		h := sha256.New()
		for off := int64(0); ; {
			if err := ctx.Err(); err != nil {
				return v1.Hash{}, nil, Stat{}, err
			}
			n, err := syscall.Pread(fd, buf, off)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				return v1.Hash{}, nil, Stat{}, err
			}
			if n == 0 {
				break
			}
			h.Write(buf[:n])
			off += int64(n)
		}
		if x, err = fxattrs(fd); err != nil {
			return v1.Hash{}, nil, Stat{}, err
		}
		if err := syscall.Fstat(fd, &after); err != nil {
			return v1.Hash{}, nil, Stat{}, err
		}
		if st = statOf(&before); st == statOf(&after) {
			return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, x, st, nil
		}
	}
	return v1.Hash{}, nil, Stat{}, ErrChanged
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
// and its d_type.
func forEachName(fd int, buf []byte, fn func(name []byte, dtype uint8) error) error {
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

// Digest returns the sha256 of the regular file at path, whose key in the
// cache is rel, from the cache when its stat data matches and is not
// racy, else by reading it (and recording it). A final symlink is not
// followed.
func (c *StatCache) Digest(path, rel string) (v1.Hash, error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return v1.Hash{}, fmt.Errorf("digest %s: %w", path, err)
	}
	if fileType(st.Mode) != TypeFile {
		return v1.Hash{}, fmt.Errorf("digest %s: not a regular file", path)
	}
	if d, _, ok := c.Lookup(rel, statOf(&st)); ok {
		return d, nil
	}
	fd, err := openAt(atFDCWD, path, openFileFlags)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("digest %s: %w", path, err)
	}
	defer syscall.Close(fd)
	d, x, fst, err := hashFD(context.Background(), fd, make([]byte, readBufSize))
	if err != nil {
		return v1.Hash{}, fmt.Errorf("digest %s: %w", path, err)
	}
	c.Add(rel, fst, d, x)
	return d, nil
}
