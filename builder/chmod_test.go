package builder

import (
	"fmt"
	"io/fs"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"

	"minibuild/internal/testenv"
)

func TestChmodApply(t *testing.T) {
	t.Parallel()
	// Cases from BuildKit's testChmodNonOctal (file mode 0666, dir mode
	// 0124) plus the reference's examples; want values are chmod(1)'s.
	tests := []struct {
		spec string
		in   fs.FileMode
		want fs.FileMode
	}{
		{"go-w", 0o666, 0o644},
		{"u=rw,g=r,o=r", 0o666, 0o644},
		{"a+X", 0o666, 0o666},
		{"go-w", fs.ModeDir | 0o124, fs.ModeDir | 0o104},
		{"u+rw,g+r,o-x,o+w", fs.ModeDir | 0o124, fs.ModeDir | 0o766},
		{"a+X", fs.ModeDir | 0o124, fs.ModeDir | 0o135},
		{"+x", 0o644, 0o755},
		{"u=rwX,go=rX", 0o600, 0o644},
		{"u=rwX,go=rX", 0o700, 0o755},
		{"u=rwX,go=rX", fs.ModeDir | 0o700, fs.ModeDir | 0o755},
		{"g=u", 0o740, 0o770},
		{"go=u-w", 0o755, 0o755},
		{"u+s,g+s", 0o755, 0o755 | fs.ModeSetuid | fs.ModeSetgid},
		{"+t", fs.ModeDir | 0o777, fs.ModeDir | 0o777 | fs.ModeSticky},
		{"o=", 0o777, 0o770},
		{"=r,u+w", 0o777, 0o644},
		{"755", 0o600, 0o755},
		{"4755", 0o600, 0o755 | fs.ModeSetuid},
		{"0", 0o755, 0},
		{"a-X", 0o644, 0o644},
		{"a-X", 0o744, 0o644},
		{"u-x,+X", 0o124, 0o135}, // X judged on the original mode (BSD)
	}
	for _, tc := range tests {
		c, err := ParseChmod(tc.spec)
		if err != nil {
			t.Errorf("ParseChmod(%q) = %v", tc.spec, err)
			continue
		}
		if got := c.Apply(tc.in); got != tc.want {
			t.Errorf("ParseChmod(%q).Apply(%v) = %v, want %v", tc.spec, tc.in, got, tc.want)
		}
	}
}

func TestParseChmodErrors(t *testing.T) {
	t.Parallel()
	for _, spec := range []string{"", "64a", "10000", "8", "u+q", "u", "u+x,", "z+x", "+x y"} {
		if _, err := ParseChmod(spec); err == nil {
			t.Errorf("ParseChmod(%q) = nil error, want one", spec)
		}
	}
}

// TestChmodMatchesCoreutils compares symbolic modes with chmod(1) run
// under a zero umask (BuildKit evaluates them with umask 0).
func TestChmodMatchesCoreutils(t *testing.T) {
	t.Parallel()
	testenv.RequireTool(t, "chmod")
	// Not compared: X after an operation that changes execute bits in the
	// same mode ("u-x,+X"); chmod(1) judges X on the mode changed so far,
	// BSD setmode (BuildKit's library) on the original mode.
	specs := []string{"u+x", "g-w", "o=r", "a+X", "u=rwX,go=rX", "go=u-w", "ug+s", "+t", "a-rwx,u+r", "g=o", "=", "o+w,g-r", "a-X", "go=X", "u=rwX,g=u-w,o="}
	starts := []fs.FileMode{0o644, 0o755, 0o600, 0o124, 0o4755}
	dir := t.TempDir()
	for _, spec := range specs {
		c, err := ParseChmod(spec)
		if err != nil {
			t.Fatalf("ParseChmod(%q) = %v", spec, err)
		}
		for _, start := range starts {
			for _, isDir := range []bool{false, true} {
				p := filepath.Join(dir, "x")
				os.RemoveAll(p)
				in := start
				if isDir {
					if err := os.Mkdir(p, 0o700); err != nil {
						t.Fatal(err)
					}
					in |= fs.ModeDir
				} else if err := os.WriteFile(p, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				setMode(t, p, start)
				script := fmt.Sprintf("umask 0 && chmod %s %s && stat -c %%a %s", shellQuote(spec), p, p)
				out, err := osexec.Command("sh", "-c", script).CombinedOutput()
				if err != nil {
					t.Fatalf("chmod %s: %v: %s", spec, err, out)
				}
				var want uint32
				fmt.Sscanf(strings.TrimSpace(string(out)), "%o", &want)
				if isDir {
					// GNU chmod keeps a directory's setuid/setgid unless
					// told otherwise; compare permission and sticky bits.
					want &^= 0o6000
				}
				got := toBits(c.Apply(in))
				if isDir {
					got &^= 0o6000
				}
				if got != want {
					t.Errorf("chmod %s on %v (dir %v): got %04o, chmod(1) %04o", spec, start, isDir, got, want)
				}
			}
		}
	}
}

func setMode(t *testing.T, p string, m fs.FileMode) {
	t.Helper()
	if err := os.Chmod(p, fromBits(0, uint32(m.Perm())|toBits(m))); err != nil {
		t.Fatal(err)
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
