package builder

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/patternmatcher"
	"golang.org/x/sys/unix"
)

// Copy performs COPY/ADD steps into root, a directory treated as the
// image's root filesystem (the merged overlay of the step): destination
// paths are resolved inside it as in a chroot, so a symlink in the image
// is followed the way Docker follows it, never out of root.
//
// It implements BuildKit's semantics (fsutil's copy): a directory source
// has its contents copied; a file goes into an existing directory or
// becomes the destination path; missing parents are created with mode
// 0755 (the octal --chmod, if any; see copier.mkdirs for --link) owned by
// the --chown owner or root;
// source modes, times, xattrs, hardlinks and symlinks are kept; owners are
// 0:0 for the build context and kept for --from, unless --chown; --chmod
// applies to every copied file and directory; ADD extracts local archives
// and places downloaded files.
//
// Copy runs entirely on the calling goroutine and starts none (it may run
// external xz/zstd processes for ADD archives), so it can run on a locked
// OS thread inside a private mount namespace. It needs the privileges to
// chown. Steps are performed in order; the first error stops it.
func Copy(ctx context.Context, root string, reqs ...CopyRequest) error {
	dst, err := openRoot(root)
	if err != nil {
		return err
	}
	defer dst.close()
	for _, req := range reqs {
		if err := copyRequest(ctx, dst, req); err != nil {
			return err
		}
	}
	return nil
}

// Mkdir performs a WORKDIR step: creates op.Path and missing parents in
// root (mode 0755), owned by op.User resolved in root's /etc/passwd (root
// when the user is unknown there, as BuildKit does). An existing
// directory is left alone.
func Mkdir(ctx context.Context, root string, op *WorkdirOp, ids IDLookup) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dst, err := openRoot(root)
	if err != nil {
		return err
	}
	defer dst.close()
	var owner Owner
	if op.User != "" {
		if ids == nil {
			ids = dst.lookup()
		}
		if o, err := ResolveOwner(op.User, ids); err == nil {
			owner = o
		}
	}
	rel, err := dst.resolve(op.Path)
	if err != nil {
		return fmt.Errorf("create working directory %s: %w", op.Path, err)
	}
	d, err := dst.mkdirAll(rel, 0o755, owner)
	if err != nil {
		return fmt.Errorf("create working directory %s: %w", op.Path, err)
	}
	d.close()
	return nil
}

// lookup is an IDLookup reading the root's /etc/passwd and /etc/group.
func (r *rootFS) lookup() IDLookup {
	return FileLookup{Open: func(name string) (io.ReadCloser, error) {
		rel, err := r.resolve(name)
		if err != nil {
			return nil, err
		}
		fd, err := r.open(rel)
		if err != nil {
			return nil, err
		}
		return os.NewFile(uintptr(fd), name), nil
	}}
}

// copier performs one CopyRequest.
type copier struct {
	ctx     context.Context
	dst     *rootFS
	src     *rootFS
	tree    Tree
	op      *CopyOp
	owner   *Owner // --chown, resolved; nil keeps the tree's default
	dirPerm uint32 // mode of parents Copy creates
	ignore  *ignoreMatcher
	exclude *patternmatcher.PatternMatcher
	include *patternmatcher.PatternMatcher // --parents pattern of the current source
	inodes  map[inodeKey]string            // hardlinks: source inode → first destination path
}

type inodeKey struct{ dev, ino uint64 }

func copyRequest(ctx context.Context, dst *rootFS, req CopyRequest) (err error) {
	op := req.Op
	c := &copier{ctx: ctx, dst: dst, tree: req.Src, op: op, dirPerm: 0o755, ignore: &ignoreMatcher{}}
	if op.Chmod != nil {
		if perm, ok := op.Chmod.Octal(); ok {
			c.dirPerm = uint32(perm)
		}
	}
	if op.Chown != "" {
		ids := req.IDs
		if ids == nil {
			ids = dst.lookup()
		}
		o, err := ResolveOwner(op.Chown, ids)
		if err != nil {
			return fmt.Errorf("--chown=%s: %w", op.Chown, err)
		}
		c.owner = &o
	}
	if len(op.Excludes) > 0 {
		if c.exclude, err = patternmatcher.New(op.Excludes); err != nil {
			return fmt.Errorf("--exclude: %w", err)
		}
	}
	var sources []Source
	if hasLocalSources(op) {
		if sources, err = Sources(req.Src, op); err != nil {
			return err
		}
		if c.src, err = openRoot(req.Src.Dir); err != nil {
			return err
		}
		defer c.src.close()
		if c.ignore, err = newIgnoreMatcher(req.Src); err != nil {
			return err
		}
	}
	fetched := req.Fetched
	for i, raw := range op.Sources {
		if op.Add && isURL(raw) {
			if len(fetched) == 0 || fetched[0].URL != raw {
				return fmt.Errorf("ADD %s: not downloaded", raw)
			}
			if err := c.copyFetched(fetched[0]); err != nil {
				return fmt.Errorf("ADD %s: %w", raw, err)
			}
			fetched = fetched[1:]
			continue
		}
		for _, s := range sources {
			if s.Arg != i {
				continue
			}
			if err := c.copySource(s); err != nil {
				return fmt.Errorf("copy %s: %w", displayName(s.Name), err)
			}
		}
	}
	for _, h := range op.Heredocs {
		if err := c.copyInline(h); err != nil {
			return fmt.Errorf("copy <<%s: %w", h.Path, err)
		}
	}
	return nil
}

func displayName(name string) string {
	if name == "" {
		return "."
	}
	return name
}

// copySource copies one resolved source of the tree.
func (c *copier) copySource(s Source) error {
	c.inodes = map[inodeKey]string{}
	c.include = nil
	if s.Include != "" {
		pm, err := patternmatcher.New([]string{s.Include})
		if err != nil {
			return fmt.Errorf("--parents pattern %q: %w", s.Include, err)
		}
		c.include = pm
	}
	if c.op.Add && c.op.Unpack && !s.Dir {
		done, err := c.unpackFrom(c.src, s.Path)
		if err != nil || done {
			return err
		}
	}
	st, err := c.src.lstat(s.Path)
	if err != nil {
		return err
	}
	return c.copyTop(origin{root: c.src, rel: s.Path}, path.Base("/"+s.Name), &st)
}

// copyFetched places a downloaded ADD source, or extracts it with
// --unpack=true.
func (c *copier) copyFetched(f *Fetched) error {
	src, err := openRoot(filepath.Dir(f.File))
	if err != nil {
		return err
	}
	defer src.close()
	saved := c.tree
	c.tree = Tree{Kind: RootTree} // keep the downloaded file's 0:0 owner
	defer func() { c.tree = saved }()
	c.inodes = map[inodeKey]string{}
	name := filepath.Base(f.File)
	if c.op.UnpackURL {
		if done, err := c.unpackFrom(src, name); err != nil || done {
			return err
		}
	}
	st, err := src.lstat(name)
	if err != nil {
		return err
	}
	return c.copyTop(origin{root: src, rel: name}, f.Name, &st)
}

// copyInline writes a COPY <<EOF heredoc as a file (mode 0644, owned by
// root, like BuildKit's Mkfile), to the destination rules of a file.
func (c *copier) copyInline(h InlineFile) error {
	c.inodes = map[inodeKey]string{}
	var now unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &now); err != nil {
		return err
	}
	st := unix.Stat_t{Mode: unix.S_IFREG | h.Mode, Size: int64(len(h.Data)), Atim: now, Mtim: now}
	saved := c.tree
	c.tree = Tree{Kind: ContextTree} // 0:0 unless --chown
	defer func() { c.tree = saved }()
	return c.copyTop(origin{data: h.Data}, path.Base("/"+h.Path), &st)
}

// ensureDest creates the directory the destination lives in (the
// destination itself when it ends in "/") and returns the destination
// resolved inside the root.
func (c *copier) ensureDest() (string, error) {
	dest := c.op.Dest
	ensure := dest
	if dir, f := path.Split(dest); f != "" && f != "." {
		ensure = dir
	}
	rel, err := c.dst.resolve(ensure)
	if err != nil {
		return "", err
	}
	d, err := c.mkdirs(rel)
	if err != nil {
		return "", err
	}
	d.close()
	return c.dst.resolve(path.Clean(dest))
}

// mkdirs creates rel, the directory a copy goes into, and its missing
// parents, owned by the --chown owner or root, with the mode of an octal
// --chmod as BuildKit does (0755 without). With --link only rel takes
// that mode: the directories above it stand for whatever the base has
// there (the layer replaces their attributes in the image), and /opt or
// /etc made 0600 would break it, so they are 0755 (docs/link.md). BuildKit
// never meets this case: it drops --link when --chmod is set.
func (c *copier) mkdirs(rel string) (*dirFD, error) {
	parts := splitPath(rel)
	if !c.op.Link || len(parts) < 2 {
		return c.dst.mkdirAll(rel, c.dirPerm, c.parentOwner())
	}
	pd, err := c.dst.mkdirAll(strings.Join(parts[:len(parts)-1], "/"), 0o755, c.parentOwner())
	if err != nil {
		return nil, err
	}
	defer pd.close()
	return pd.mkdirOpen(parts[len(parts)-1], c.dirPerm, c.parentOwner())
}

// parentOwner owns the directories Copy creates on the way: the --chown
// owner, else root.
func (c *copier) parentOwner() Owner {
	if c.owner != nil {
		return *c.owner
	}
	return Owner{}
}

// ownerFor is the owner of a copied entry.
func (c *copier) ownerFor(st *unix.Stat_t) Owner {
	switch {
	case c.owner != nil:
		return *c.owner
	case c.tree.Kind == ContextTree:
		return Owner{}
	}
	return Owner{UID: int(st.Uid), GID: int(st.Gid)}
}

// modeFor is the permission bits of a copied entry: the source's, changed
// by --chmod.
func (c *copier) modeFor(st *unix.Stat_t) uint32 {
	m := st.Mode & 0o7777
	if c.op.Chmod == nil {
		return m
	}
	fm := fromBits(0, m)
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		fm |= os.ModeDir
	}
	return toBits(c.op.Chmod.Apply(fm))
}
