//go:build linux

package exec_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"minibuild/exec"
	"minibuild/exec/exectest"
	"minibuild/internal/testenv"
)

func TestRunBadInput(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	root := exectest.Root(t)
	noShell := t.TempDir()
	exectest.WriteFiles(t, noShell, map[string]string{"etc/passwd": exectest.Passwd})
	badShebang := exectest.Root(t)
	exectest.WriteFiles(t, badShebang, map[string]string{"script": "#!/nonexistent/interpreter\n"})
	if err := os.Chmod(filepath.Join(badShebang, "script"), 0o755); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct {
		name   string
		spec   exec.Spec
		want   string // in the error text
		wantIs error
	}{
		{"no /bin/sh", exec.Spec{Args: []string{"/bin/sh", "-c", "true"}, Root: exectest.NewRoot(t, noShell)},
			"exec /bin/sh: no such file or directory", fs.ErrNotExist},
		{"command not in PATH", exec.Spec{Args: []string{"nosuchcommand"}, Root: exectest.NewRoot(t, root)},
			"exec nosuchcommand: executable file not found in $PATH", fs.ErrNotExist},
		{"missing interpreter", exec.Spec{Args: []string{"/script"}, Root: exectest.NewRoot(t, badShebang)},
			"exec /script: no such file or directory (the file exists: its interpreter", fs.ErrNotExist},
		{"not executable", exec.Spec{Args: []string{"/etc/passwd"}, Root: exectest.NewRoot(t, root)},
			"exec /etc/passwd: permission denied", fs.ErrPermission},
		{"unknown user", exec.Spec{Args: []string{"true"}, User: "nobody2", Root: exectest.NewRoot(t, root)},
			`user "nobody2": unknown user or group: no "nobody2" in /etc/passwd`, exec.ErrUnknownUser},
		{"unknown group", exec.Spec{Args: []string{"true"}, User: "app:nogroup", Root: exectest.NewRoot(t, root)},
			`user "app:nogroup": unknown user or group: no group "nogroup" in /etc/group`, exec.ErrUnknownUser},
		{"user in scratch", exec.Spec{Args: []string{"true"}, User: "app", Root: exectest.NewRoot(t)},
			`user "app": unknown user or group`, exec.ErrUnknownUser},
		{"missing top lowerdir", exec.Spec{Args: []string{"true"}, Root: exectest.NewRoot(t, missing, root)},
			missing + ": no such file or directory", fs.ErrNotExist},
		{"missing lowerdir below", exec.Spec{Args: []string{"true"}, Root: exectest.NewRoot(t, root, missing)},
			"lowerdir+=" + missing + ": no such file or directory", fs.ErrNotExist},
		{"empty command", exec.Spec{Root: exectest.NewRoot(t, root)}, "empty command", nil},
		{"relative upper", exec.Spec{Args: []string{"true"}, Root: exec.RootSpec{Lower: []string{root}, Upper: "upper", Work: "/w"}},
			`upper dir "upper": not an absolute path`, nil},
		{"relative cwd", exec.Spec{Args: []string{"true"}, Cwd: "app", Root: exectest.NewRoot(t, root)},
			`working directory "app": not an absolute path`, nil},
		{"unknown network", exec.Spec{Args: []string{"true"}, Network: "bridge", Root: exectest.NewRoot(t, root)},
			`network "bridge": unknown mode`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := exec.Run(context.Background(), tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want an error containing %q", err, tc.want)
			}
			t.Logf("Run = %v", err)
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("Run = %v, want errors.Is(err, %v)", err, tc.wantIs)
			}
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Errorf("Run = %v, want a setup error, not *ExitError", err)
			}
			if w := tc.spec.Root.Work; filepath.IsAbs(w) && exectest.Tree(t, w) != nil {
				t.Errorf("work dir after error = %q, want empty", exectest.Tree(t, w))
			}
			if u := tc.spec.Root.Upper; filepath.IsAbs(u) && exectest.Tree(t, u) != nil {
				t.Errorf("upper dir after error = %q, want empty", exectest.Tree(t, u))
			}
		})
	}
}
