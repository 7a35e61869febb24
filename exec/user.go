package exec

import (
	"fmt"
	"strconv"
	"strings"
)

// maxID is the largest uid or gid accepted, as in runc: ids above it are
// reserved (-1 means "unchanged" to the kernel).
const maxID = 1<<31 - 1

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// resolveUser resolves a USER value against the contents of /etc/passwd
// and /etc/group (nil when the file does not exist), with the rules of
// runc's GetExecUser, which Docker and BuildKit use:
//
//   - "" is uid 0, with gid and home from passwd's uid-0 entry if any;
//   - a name must be in passwd; a number need not be (gid 0, home "/");
//   - an explicit group (after ":") sets the gid and no supplementary
//     groups; a name must be in group, a number need not be;
//   - without an explicit group, a user found in passwd gets the groups
//     that list its name as a member, in /etc/group order.
func resolveUser(spec string, passwd, group []byte) (User, error) {
	userArg, groupArg, _ := strings.Cut(spec, ":")
	if strings.Contains(groupArg, ":") {
		return User{}, fmt.Errorf("user %q: more than one colon", spec)
	}
	uid, uidNumeric, err := parseID(userArg)
	if err != nil {
		return User{}, fmt.Errorf("user %q: %w", spec, err)
	}
	u := User{Home: "/"}
	var matched string
	found := false
	for _, e := range parsePasswd(passwd) {
		if (userArg == "" && e.uid == 0) || (uidNumeric && e.uid == uid) || (!uidNumeric && userArg != "" && e.name == userArg) {
			u.UID, u.GID, matched, found = e.uid, e.gid, e.name, true
			if e.home != "" {
				u.Home = e.home
			}
			break
		}
	}
	if !found && userArg != "" {
		if !uidNumeric {
			return User{}, fmt.Errorf("user %q: %w: no %q in /etc/passwd", spec, ErrUnknownUser, userArg)
		}
		u.UID = uid
	}
	if groupArg != "" {
		gid, gidNumeric, err := parseID(groupArg)
		if err != nil {
			return User{}, fmt.Errorf("user %q: %w", spec, err)
		}
		found := false
		for _, g := range parseGroup(group) {
			if (gidNumeric && g.gid == gid) || (!gidNumeric && g.name == groupArg) {
				u.GID, found = g.gid, true
				break
			}
		}
		if !found && !gidNumeric {
			return User{}, fmt.Errorf("user %q: %w: no group %q in /etc/group", spec, ErrUnknownUser, groupArg)
		}
		if !found {
			u.GID = gid
		}
		return u, nil
	}
	if matched != "" {
		u.Groups = memberOf(parseGroup(group), matched)
	}
	return u, nil
}

// parseID reports whether s is a numeric id and its value; a number out of
// range is an error, anything else is a name.
func parseID(s string) (uint32, bool, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > maxID {
		return 0, true, fmt.Errorf("id %s out of range (max %d)", s, maxID)
	}
	return uint32(n), true, nil
}

func memberOf(groups []groupEntry, name string) []uint32 {
	var gids []uint32
	seen := map[uint32]bool{}
	for _, g := range groups {
		for _, m := range g.members {
			if m == name && !seen[g.gid] {
				seen[g.gid] = true
				gids = append(gids, g.gid)
			}
		}
	}
	return gids
}

// parsePasswd parses passwd(5) lines, skipping blank, comment and
// malformed ones (a non-numeric id), as libc does.
func parsePasswd(data []byte) []passwdEntry {
	var out []passwdEntry
	eachLine(data, func(f []string) {
		if len(f) < 4 {
			return
		}
		uid, okU, errU := parseID(f[2])
		gid, okG, errG := parseID(f[3])
		if !okU || !okG || errU != nil || errG != nil {
			return
		}
		e := passwdEntry{name: f[0], uid: uid, gid: gid}
		if len(f) > 5 {
			e.home = f[5]
		}
		out = append(out, e)
	})
	return out
}

// parseGroup parses group(5) lines like parsePasswd.
func parseGroup(data []byte) []groupEntry {
	var out []groupEntry
	eachLine(data, func(f []string) {
		if len(f) < 3 {
			return
		}
		gid, ok, err := parseID(f[2])
		if !ok || err != nil {
			return
		}
		e := groupEntry{name: f[0], gid: gid}
		if len(f) > 3 && f[3] != "" {
			for _, m := range strings.Split(f[3], ",") {
				if m = strings.TrimSpace(m); m != "" {
					e.members = append(e.members, m)
				}
			}
		}
		out = append(out, e)
	})
	return out
}

func eachLine(data []byte, fn func(fields []string)) {
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		fn(strings.Split(line, ":"))
	}
}
