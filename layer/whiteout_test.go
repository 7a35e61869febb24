package layer

import (
	"errors"
	"path"
	"strings"
	"testing"
)

func TestCleanName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		unsafe   bool
	}{
		{"etc/passwd", "etc/passwd", false},
		{"./etc/passwd", "etc/passwd", false},
		{"/etc/passwd", "etc/passwd", false},
		{"//etc//x/", "etc/x", false},
		{"a/../b", "b", false},
		{"./", ".", false},
		{"/", ".", false},
		{"..", "", true},
		{"../x", "", true},
		{"a/../../x", "", true},
		{"/../x", "", true},
		{"a/b/../../../x", "", true},
		{"a\x00b", "", true},
	}
	for _, tt := range tests {
		got, err := cleanName(tt.in)
		if tt.unsafe {
			if !errors.Is(err, ErrUnsafePath) {
				t.Errorf("cleanName(%q) = %q, %v, want ErrUnsafePath", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("cleanName(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseWhiteout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in        string
		dir, base string
		kind      whiteoutKind
		bad       bool
	}{
		{"a/b", "a", "b", notWhiteout, false},
		{"b", ".", "b", notWhiteout, false},
		{"a/.wh.b", "a", "b", whiteoutFile, false},
		{".wh.b", ".", "b", whiteoutFile, false},
		{"a/.wh..wh..opq", "a", "", whiteoutOpaque, false},
		{".wh..wh..opq", ".", "", whiteoutOpaque, false},
		{"a/.wh..wh.plnk", "a", ".wh..wh.plnk", whiteoutMeta, false},
		{"a/.wh..b", "a", ".b", whiteoutFile, false},
		{"a/.wh.", "", "", 0, true},
		{"a/.wh..", "", "", 0, true},
		{"a/.wh...", "", "", 0, true},
	}
	for _, tt := range tests {
		dir, base, kind, err := parseWhiteout(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("parseWhiteout(%q) = %q, %q, %d, want an error", tt.in, dir, base, kind)
			}
			continue
		}
		if err != nil || dir != tt.dir || base != tt.base || kind != tt.kind {
			t.Errorf("parseWhiteout(%q) = %q, %q, %d, %v, want %q, %q, %d", tt.in, dir, base, kind, err, tt.dir, tt.base, tt.kind)
		}
	}
}

func TestDroppedXattr(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"trusted.overlay.opaque": true, "trusted.overlay.origin": true, "user.overlay.whiteout": true,
		"security.selinux": true, "security.capability": false, "trusted.other": false,
		"user.mime_type": false, "system.posix_acl_access": false,
	} {
		if got := droppedXattr(name); got != want {
			t.Errorf("droppedXattr(%q) = %v, want %v", name, got, want)
		}
	}
}

// FuzzParseWhiteout: whatever the name, a clean name never leaves the root
// and a whiteout always names a sibling in the same directory.
func FuzzParseWhiteout(f *testing.F) {
	for _, s := range []string{"a/.wh.b", ".wh..wh..opq", "../x", "/abs/.wh..wh.plnk", "a/.wh..", "./.wh.x/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		p, err := cleanName(name)
		if err != nil {
			return
		}
		if p == ".." || strings.HasPrefix(p, "../") || strings.HasPrefix(p, "/") || path.Clean(p) != p {
			t.Fatalf("cleanName(%q) = %q: not clean or escapes", name, p)
		}
		dir, base, kind, err := parseWhiteout(p)
		if err != nil {
			return
		}
		if kind == whiteoutFile {
			if base == "" || base == "." || base == ".." || strings.Contains(base, "/") {
				t.Fatalf("parseWhiteout(%q) deletes %q in %q", p, base, dir)
			}
			if got := joinPath(dir, whiteoutPrefix+base); got != p {
				t.Fatalf("parseWhiteout(%q) = %q, %q: does not round-trip (%q)", p, dir, base, got)
			}
		}
	})
}
