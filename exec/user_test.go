package exec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

const (
	testPasswd = `# comment
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1::/usr/sbin:/usr/sbin/nologin
broken:x:notanumber:1::/x:/bin/sh
app:x:1000:1000:App:/home/app:/bin/sh
nohome:x:1001:1001
`
	testGroup = `root:x:0:
audio:x:29:app, daemon
video:x:44:app,root
app:x:1000:
bad:x:x:app
dup:x:44:app
`
)

func TestResolveUser(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		spec string
		want User
	}{
		{"", User{UID: 0, GID: 0, Groups: []uint32{44}, Home: "/root"}},
		{"root", User{UID: 0, GID: 0, Groups: []uint32{44}, Home: "/root"}},
		{"0", User{UID: 0, GID: 0, Groups: []uint32{44}, Home: "/root"}},
		{"app", User{UID: 1000, GID: 1000, Groups: []uint32{29, 44}, Home: "/home/app"}},
		{"1000", User{UID: 1000, GID: 1000, Groups: []uint32{29, 44}, Home: "/home/app"}},
		{"daemon", User{UID: 1, GID: 1, Groups: []uint32{29}, Home: "/usr/sbin"}},
		{"app:audio", User{UID: 1000, GID: 29, Home: "/home/app"}},
		{"app:44", User{UID: 1000, GID: 44, Home: "/home/app"}},
		{"app:4444", User{UID: 1000, GID: 4444, Home: "/home/app"}},
		{"1000:1000", User{UID: 1000, GID: 1000, Home: "/home/app"}},
		{"4242", User{UID: 4242, GID: 0, Home: "/"}},
		{"4242:video", User{UID: 4242, GID: 44, Home: "/"}},
		{"nohome", User{UID: 1001, GID: 1001, Home: "/"}},
		{"007", User{UID: 7, Home: "/"}},
	} {
		got, err := resolveUser(tc.spec, []byte(testPasswd), []byte(testGroup))
		if err != nil {
			t.Errorf("resolveUser(%q) = %v", tc.spec, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("resolveUser(%q) mismatch (-want +got):\n%s", tc.spec, diff)
		}
	}
}

func TestResolveUserWithoutFiles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		spec string
		want User
	}{
		{"", User{Home: "/"}},
		{"123", User{UID: 123, Home: "/"}},
		{"123:456", User{UID: 123, GID: 456, Home: "/"}},
	} {
		got, err := resolveUser(tc.spec, nil, nil)
		if err != nil || !cmp.Equal(got, tc.want) {
			t.Errorf("resolveUser(%q, no files) = %+v, %v; want %+v", tc.spec, got, err, tc.want)
		}
	}
}

func TestResolveUserErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		spec    string
		want    string
		unknown bool
	}{
		{"nobody", `user "nobody": unknown user or group: no "nobody" in /etc/passwd`, true},
		{"broken", `no "broken" in /etc/passwd`, true},
		{"app:nogroup", `user "app:nogroup": unknown user or group: no group "nogroup" in /etc/group`, true},
		{"app:bad", `no group "bad"`, true},
		{"4294967296", `user "4294967296": id 4294967296 out of range`, false},
		{"2147483648", `id 2147483648 out of range`, false},
		{"app:9999999999", `id 9999999999 out of range`, false},
		{"a:b:c", `user "a:b:c": more than one colon`, false},
	} {
		_, err := resolveUser(tc.spec, []byte(testPasswd), []byte(testGroup))
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, ErrUnknownUser) != tc.unknown {
			t.Errorf("resolveUser(%q) = %v, want an error containing %q (ErrUnknownUser: %v)", tc.spec, err, tc.want, tc.unknown)
		}
	}
}

func TestLookupUserStaysInRoot(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	etc := filepath.Join(root, "etc")
	if err := os.Mkdir(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	// An absolute symlink and a ".." climb both resolve inside root.
	if err := os.WriteFile(filepath.Join(root, "passwd.real"), []byte("app:x:7:8::/app:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/passwd.real", filepath.Join(etc, "passwd")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "group.real"), []byte("builders:x:55:app\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../../../../etc/group.real", filepath.Join(etc, "group")); err != nil {
		t.Fatal(err)
	}
	got, err := LookupUser(root, "app")
	if want := (User{UID: 7, GID: 8, Groups: []uint32{55}, Home: "/app"}); err != nil || !cmp.Equal(got, want) {
		t.Errorf("LookupUser(root, app) = %+v, %v; want %+v", got, err, want)
	}
	// The host's /etc/group has root; the image's does not.
	if _, err := LookupUser(root, "app:root"); !errors.Is(err, ErrUnknownUser) {
		t.Errorf("LookupUser(root, app:root) = %v, want ErrUnknownUser (host's /etc/group not read)", err)
	}
}

func TestLookupUserRefusesSpecialFiles(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(root, "etc/passwd"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LookupUser(root, "app"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("LookupUser(FIFO passwd) = %v, want a not-a-regular-file error (and no hang)", err)
	}
}
