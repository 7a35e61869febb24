package builder

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// IDLookup resolves user and group names for COPY/ADD --chown and for the
// owner of a directory WORKDIR creates. Names are looked up in the
// destination image, not on the host.
type IDLookup interface {
	// User returns the uid and primary gid of the user called name, or an
	// error wrapping [ErrNotFound].
	User(name string) (uid, gid int, err error)
	// Group returns the gid of the group called name, or an error
	// wrapping [ErrNotFound].
	Group(name string) (gid int, err error)
}

// Owner is a resolved uid:gid.
type Owner struct {
	UID, GID int
}

// ResolveOwner turns a --chown or USER value ("user[:group]", names or
// numbers) into ids like BuildKit: "root" is 0 without a lookup, a numeric
// user without a group uses the same number as gid, a named user without a
// group uses its primary group. ids is only consulted for names.
func ResolveOwner(spec string, ids IDLookup) (Owner, error) {
	user, group, _ := strings.Cut(spec, ":")
	if user == "" {
		return Owner{}, fmt.Errorf("invalid user %q: empty user name", spec)
	}
	var o Owner
	if id, ok := numericID(user); ok {
		o = Owner{UID: id, GID: id}
	} else {
		if ids == nil {
			return Owner{}, fmt.Errorf("look up user %q: %w", user, ErrNotFound)
		}
		uid, gid, err := ids.User(user)
		if err != nil {
			return Owner{}, err
		}
		o = Owner{UID: uid, GID: gid}
	}
	if group == "" {
		return o, nil
	}
	if id, ok := numericID(group); ok {
		o.GID = id
		return o, nil
	}
	if ids == nil {
		return Owner{}, fmt.Errorf("look up group %q: %w", group, ErrNotFound)
	}
	gid, err := ids.Group(group)
	if err != nil {
		return Owner{}, err
	}
	o.GID = gid
	return o, nil
}

// numericID is BuildKit's parseUID: "root" or a decimal 32-bit number.
func numericID(s string) (int, bool) {
	if s == "root" {
		return 0, true
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 0 {
		return 0, false
	}
	return int(n), true
}

// FileLookup is an [IDLookup] reading passwd and group files through Open,
// which returns the content of "/etc/passwd" or "/etc/group" of the image
// (or an error wrapping fs.ErrNotExist when it has none).
type FileLookup struct {
	Open func(name string) (io.ReadCloser, error)
}

var _ IDLookup = FileLookup{}

// User implements [IDLookup].
func (l FileLookup) User(name string) (int, int, error) {
	var uid, gid int
	found, err := l.scan("/etc/passwd", func(f []string) bool {
		if len(f) < 4 || f[0] != name {
			return false
		}
		u, err1 := strconv.Atoi(f[2])
		g, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			return false
		}
		uid, gid = u, g
		return true
	})
	if err != nil {
		return 0, 0, err
	}
	if !found {
		return 0, 0, fmt.Errorf("user %q in /etc/passwd of the image: %w", name, ErrNotFound)
	}
	return uid, gid, nil
}

// Group implements [IDLookup].
func (l FileLookup) Group(name string) (int, error) {
	var gid int
	found, err := l.scan("/etc/group", func(f []string) bool {
		if len(f) < 3 || f[0] != name {
			return false
		}
		g, err := strconv.Atoi(f[2])
		if err != nil {
			return false
		}
		gid = g
		return true
	})
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, fmt.Errorf("group %q in /etc/group of the image: %w", name, ErrNotFound)
	}
	return gid, nil
}

// scan calls match on the colon-separated fields of each entry of file
// until it returns true. A missing file finds nothing.
func (l FileLookup) scan(file string, match func([]string) bool) (bool, error) {
	r, err := l.Open(file)
	if err != nil {
		if errors.Is(err, ErrNotFound) || isNotExist(err) {
			return false, nil
		}
		return false, fmt.Errorf("read %s: %w", file, err)
	}
	defer r.Close()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if match(strings.Split(line, ":")) {
			return true, nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("read %s: %w", file, err)
	}
	return false, nil
}
