package cache

import (
	"testing"
	"time"
)

// FuzzDecode: damaged stat caches and listings are errors, never panics,
// and whatever loads can be used.
func FuzzDecode(f *testing.F) {
	c := &StatCache{added: map[string]*statEntry{}, session: time.Unix(100, 0)}
	c.Add("a/b", Stat{Ino: 1}, sha256Hash([]byte("x")), map[string]string{"user.k": "v"})
	c.Add("a/c", Stat{Ino: 2}, sha256Hash([]byte("y")), nil)
	c.mu.Lock()
	f.Add(c.encode())
	c.mu.Unlock()
	f.Add(encodeListing([]File{{Path: "a", Type: TypeDir}, {Path: "a/b", Type: TypeFile, Digest: sha256Hash(nil), Xattrs: map[string]string{"k": "v"}}}))
	f.Add([]byte(statMagic))
	f.Add([]byte(listingMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, table, err := openStatTable(append([]byte(nil), data...)); err == nil {
			for i := range table.n {
				_ = table.stat(i)
				_ = table.xattrs(i)
				_ = table.hex(i)
				table.markUsed(i)
			}
			if table.n > 0 {
				table.search(0, table.n, 0, "a")
			}
		}
		if files, err := decodeListing(data); err == nil {
			Digest(files)
		}
	})
}
