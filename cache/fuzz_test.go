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
	base := c.encode()
	c.mu.Unlock()
	f.Add(base)
	delta := encodeSegment(segDelta, time.Unix(200, 0), []tableEntry{{rel: "a/b", st: Stat{Ino: 3}, raw: rawDigest(sha256Hash([]byte("z")).Hex)}})
	f.Add(append(append([]byte(nil), base...), delta...))
	f.Add(encodeListing([]File{{Path: "a", Type: TypeDir}, {Path: "a/b", Type: TypeFile, Digest: sha256Hash(nil), Xattrs: map[string]string{"k": "v"}}}))
	f.Add([]byte(statMagic))
	f.Add([]byte(listingMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &StatCache{added: map[string]*statEntry{}, session: time.Unix(1000, 0), log: makeOptions(nil).log}
		if err := c.open(string(data)); err == nil {
			for _, table := range append([]statTable{c.base}, c.deltas...) {
				for i := range table.n {
					_ = table.stat(i)
					_ = table.xattrs(i)
					_ = table.raw(i)
					table.markUsed(i)
				}
			}
			c.Lookup("a/b", Stat{Ino: 1})
			c.dir("a").lookup("c", "a/c", Stat{Ino: 2})
			c.Len()
			c.mu.Lock()
			c.encode()
			c.mu.Unlock()
		}
		if files, err := decodeListing(data); err == nil {
			Digest(files)
		}
	})
}
