package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

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
