package oci

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Entries of the store root (see the package documentation).
const (
	layoutDir     = "oci"
	snapshotsDir  = "snapshots"
	ingestDir     = "ingest"
	tmpDir        = "tmp"
	trashDir      = "trash"
	lockFile      = "lock"
	indexLockFile = "index.lock"
)

// Store is the image store under one root directory. Its methods are safe
// for concurrent use by many goroutines and, through file locks, by many
// processes; [Store.GC] is the exception (see there).
type Store struct {
	root string
	log  *slog.Logger
	lock *os.File // <root>/lock, held shared while the Store is open

	bgCancel  context.CancelFunc
	bgDone    chan struct{}
	kick      chan struct{} // wakes the trash emptier
	reclaimed chan struct{} // closed once Open's stale-entry pass is done

	remote *remoteClient // registry access (remote.go)

	mu     sync.Mutex
	proc   *os.File // tmp/<id>, locked; nil until the first TempDir
	closed bool
}

// Option configures [Open].
type Option func(*options)

type options struct {
	log    *slog.Logger
	remote remoteConfig // set by the registry options in remote.go
}

// WithLogger makes the store report what it does in the background
// (stale-entry cleanup, lock waits) to l. The default is silent.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// Open opens the store at root, creating its tree (root mode 0700) and an
// empty OCI layout if needed. It holds a shared lock on <root>/lock until
// [Store.Close], waiting while another process runs [Store.GC]. Leftovers of
// crashed processes (tmp/ dirs and ingest files nobody holds) are moved to
// trash/ and trash/ is emptied by a background goroutine that Close stops.
func Open(root string, opts ...Option) (*Store, error) {
	o := options{log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	if root == "" {
		return nil, fmt.Errorf("open store: empty root: %w", ErrInvalid)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	if err := makeTree(abs); err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	lf, err := os.OpenFile(filepath.Join(abs, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	if err := waitLock(context.Background(), lf, lockShared, o.log, lf.Name()); err != nil {
		lf.Close()
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	s := &Store{root: abs, log: o.log, lock: lf, remote: newRemoteClient(o.remote)}
	if err := s.initLayout(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	s.startBackground()
	return s, nil
}

func makeTree(root string) error {
	if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(root, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	for _, d := range []string{layoutDir, snapshotsDir, ingestDir, tmpDir, trashDir} {
		if err := os.Mkdir(filepath.Join(root, d), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	return os.MkdirAll(filepath.Join(root, layoutDir, ocispec.ImageBlobsDir, "sha256"), 0o755)
}

// initLayout writes oci-layout and an empty index.json on first use and
// checks the layout version of an existing store.
func (s *Store) initLayout() error {
	p := filepath.Join(s.root, layoutDir, ocispec.ImageLayoutFile)
	data, err := os.ReadFile(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		data, _ = json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
		if err := s.writeFileAtomic(p, data); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		if err := checkLayoutVersion(data); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	if _, err := os.Stat(s.indexPath()); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// Creating index.json is an index update like any other, so two first
	// Opens cannot both write it.
	return s.updateIndex(context.Background(), func(*v1.IndexManifest) error { return nil })
}

func checkLayoutVersion(data []byte) error {
	var l ocispec.ImageLayout
	if err := json.Unmarshal(data, &l); err != nil {
		return fmt.Errorf("parse oci-layout: %w: %w", ErrInvalid, err)
	}
	if !strings.HasPrefix(l.Version, "1.") {
		return fmt.Errorf("layout version %q: %w", l.Version, ErrUnsupported)
	}
	return nil
}

// Root is the store's root directory (absolute).
func (s *Store) Root() string { return s.root }

// LayoutPath is the directory of the store's OCI image layout, readable by
// any OCI tool (`skopeo inspect oci:PATH:NAME`).
func (s *Store) LayoutPath() string { return filepath.Join(s.root, layoutDir) }

func (s *Store) indexPath() string {
	return filepath.Join(s.root, layoutDir, ocispec.ImageIndexFile)
}

func (s *Store) blobsDir() string {
	return filepath.Join(s.root, layoutDir, ocispec.ImageBlobsDir, "sha256")
}

// Close stops the background cleanup, removes this process's tmp/ dir and
// releases the store lock. It is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	proc := s.proc
	s.proc = nil
	s.mu.Unlock()

	s.bgCancel()
	<-s.bgDone
	var errs []error
	if proc != nil {
		errs = append(errs, s.removeProcDir(proc))
	}
	if err := s.lock.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close store %s: %w", s.root, err))
	}
	return errors.Join(errs...)
}

// TempDir creates a fresh directory under this process's tmp/<id>/ (on the
// same filesystem as snapshots/, so [Store.CommitSnapshot] can rename it).
// Close removes it; after a crash the next Open does.
func (s *Store) TempDir(prefix string) (string, error) {
	if strings.ContainsRune(prefix, '/') {
		return "", fmt.Errorf("temp dir %q: %w: prefix contains a slash", prefix, ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", fmt.Errorf("temp dir: store %s is closed", s.root)
	}
	if s.proc == nil {
		f, err := s.newProcDir()
		if err != nil {
			return "", fmt.Errorf("temp dir: %w", err)
		}
		s.proc = f
	}
	dir, err := os.MkdirTemp(s.proc.Name(), prefix+"-")
	if err != nil {
		return "", fmt.Errorf("temp dir: %w", err)
	}
	return dir, nil
}

func (s *Store) newProcDir() (*os.File, error) {
	var err error
	for range 8 {
		var f *os.File
		f, err = mkdirLocked(filepath.Join(s.root, tmpDir), fmt.Sprintf("%d-%s", os.Getpid(), randomHex(6)))
		if err == nil {
			return f, nil
		}
	}
	return nil, err
}

// removeProcDir moves the process dir to trash (so a crash midway leaves it
// where the next Open finishes the job), then deletes it.
func (s *Store) removeProcDir(proc *os.File) error {
	dst := s.trashName(filepath.Base(proc.Name()))
	err := os.Rename(proc.Name(), dst)
	proc.Close()
	if err != nil {
		return fmt.Errorf("remove %s: %w", proc.Name(), err)
	}
	if err := removeTree(context.Background(), dst); err != nil {
		return fmt.Errorf("remove %s: %w", proc.Name(), err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b)
}

// writeFileAtomic replaces path with data: a locked temp file in ingest/,
// fsync, rename, fsync of path's directory.
func (s *Store) writeFileAtomic(path string, data []byte) (err error) {
	f, err := createLocked(filepath.Join(s.root, ingestDir), "file-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
		}
		err = errors.Join(err, f.Close())
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
