package cache

import (
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// String words the reason in one line, e.g. "input changed: src/main.go
// (content), src/new.go (added)" or "ARG VERSION changed 1.2 → 1.3". The
// wordings are listed in docs/cache.md, "Reading explain", which a test
// keeps in step with this code.
func (r Reason) String() string {
	s := r.words()
	if len(r.Also) > 0 {
		also := make([]string, len(r.Also))
		for i, k := range r.Also {
			also[i] = string(k)
		}
		s += " [also changed: " + strings.Join(also, ", ") + "]"
	}
	return s
}

func (r Reason) words() string {
	switch r.Kind {
	case ReasonNoPrevious:
		return "no previous build of this Dockerfile"
	case ReasonNewStep:
		return "new step (no matching step in the previous build)"
	case ReasonNoCache:
		return "rebuilt on request (--no-cache)"
	case ReasonNotRun:
		return "not run (the build stopped before this step)"
	case ReasonRecordMissing:
		return "same key as the previous build, but its cache record is gone (pruned, or that build did not finish)"
	case ReasonVersion:
		return fmt.Sprintf("cache key format changed %s → %s", r.Old, r.New)
	case ReasonPlatform:
		return fmt.Sprintf("platform changed %s → %s", r.Old, r.New)
	case ReasonBase:
		return baseWords(r.Parent)
	case ReasonParent:
		return parentWords(r.Parent)
	case ReasonInstruction:
		return instructionWords(r.Old, r.New)
	case ReasonEnv:
		parts := make([]string, len(r.Env))
		for i, e := range r.Env {
			parts[i] = e.String()
		}
		return strings.Join(parts, "; ")
	case ReasonInput:
		parts := make([]string, len(r.Inputs))
		for i, in := range r.Inputs {
			parts[i] = in.String()
		}
		return strings.Join(parts, "; ")
	}
	return string(r.Kind)
}

// shortDigest is "sha256:" and the first 12 hex digits, like image IDs.
func shortDigest(h v1.Hash) string {
	if h == (v1.Hash{}) {
		return "(none)"
	}
	if len(h.Hex) > 12 {
		return h.Algorithm + ":" + h.Hex[:12]
	}
	return h.String()
}

// describeBase is "busybox:latest sha256:…", "sha256:…" or "scratch".
func describeBase(p Parent) string {
	switch p.Kind {
	case ParentScratch:
		return "scratch"
	case ParentImage:
		if p.Name != "" {
			return p.Name + " " + shortDigest(p.Digest)
		}
		return shortDigest(p.Digest)
	}
	return fmt.Sprintf("%s %s", p.Kind, shortDigest(p.Digest))
}

func baseWords(c *ParentChange) string {
	if c.Old.Kind == ParentImage && c.New.Kind == ParentImage {
		name := c.New.Name
		if name == "" {
			name = c.Old.Name
		}
		if name != "" {
			name += " "
		}
		return fmt.Sprintf("base image %snow %s (was %s)", name, shortDigest(c.New.Digest), shortDigest(c.Old.Digest))
	}
	return fmt.Sprintf("base changed to %s (was %s)", describeBase(c.New), describeBase(c.Old))
}

func parentWords(c *ParentChange) string {
	if c.Step == nil {
		return fmt.Sprintf("parent changed to %s (was %s)", shortDigest(c.New.Digest), shortDigest(c.Old.Digest))
	}
	return "parent changed (" + stepWords(c.Step) + ")"
}

// stepWords is "step 3 was rebuilt", or for a step that was itself a hit
// (a COPY --link layer on a new parent) "step 3 is on a new parent".
func stepWords(s *StepRef) string {
	if s.Cached {
		return fmt.Sprintf("step %d is on a new parent", s.Index)
	}
	return fmt.Sprintf("step %d was rebuilt", s.Index)
}

// instructionWords names the new instruction and the old one; when only
// a heredoc body differs, the first body line that does, counted from
// the heredoc's first line.
func instructionWords(old, cur string) string {
	ol, nl := strings.Split(old, "\n"), strings.Split(cur, "\n")
	if ol[0] != nl[0] {
		return fmt.Sprintf("instruction changed: %s (was %s)", nl[0], ol[0])
	}
	for i := 1; ; i++ {
		o, n := "", ""
		if i < len(ol) {
			o = ol[i]
		}
		if i < len(nl) {
			n = nl[i]
		}
		if o == n && (i < len(ol) || i < len(nl)) {
			continue
		}
		name, line, ok := heredocLine(nl, i)
		if !ok {
			name, line, ok = heredocLine(ol, i) // a body line was removed
		}
		if ok {
			return fmt.Sprintf("instruction changed in heredoc %s, line %d: %q (was %q)", name, line, n, o)
		}
		return fmt.Sprintf("instruction changed at line %d: %q (was %q)", i+1, n, o)
	}
}

// heredocLine says which heredoc body line of an instruction text
// (Instruction.String: "<<NAME", the body, NAME) line i is.
func heredocLine(lines []string, i int) (name string, line int, ok bool) {
	for j := 1; j < len(lines) && j <= i; j++ {
		switch l := lines[j]; {
		case name == "" && strings.HasPrefix(l, "<<"):
			name, line = l[2:], 0
		case name != "" && l == name:
			name = ""
		case name != "":
			line++
		}
	}
	if i >= len(lines) || name == "" || line == 0 {
		return "", 0, false
	}
	return name, line, true
}

// String is "ARG VERSION changed 1.2 → 1.3", "ENV DEBUG added: 1",
// "ENV DEBUG removed (was 1)" or "WORKDIR changed /app → /srv".
func (e EnvChange) String() string {
	name := string(e.Kind)
	if e.Name != "" {
		name += " " + e.Name
	}
	show := func(v string) string {
		// SHELL is a JSON array already; other values are quoted when
		// empty or when spaces or quotes would make them ambiguous.
		if e.Kind == EnvShell || (v != "" && !strings.ContainsAny(v, " \t\n\"")) {
			return v
		}
		return fmt.Sprintf("%q", v)
	}
	switch e.Change {
	case Added:
		return fmt.Sprintf("%s added: %s", name, show(e.New))
	case Removed:
		return fmt.Sprintf("%s removed (was %s)", name, show(e.Old))
	}
	return fmt.Sprintf("%s changed %s → %s", name, show(e.Old), show(e.New))
}

// String words one input change, e.g. "input changed: src/main.go
// (content), src/new.go (added)" or "input changed: stage builder (step 3
// was rebuilt)".
func (c InputChange) String() string {
	what := inputName(c)
	switch c.Change {
	case Added:
		return "input added: " + what
	case Removed:
		return "input removed: " + what
	}
	switch {
	case c.Kind == InputContext && len(c.Files) > 0:
		names := make([]string, len(c.Files))
		for i, f := range c.Files {
			names[i] = f.String()
		}
		s := "input changed: " + strings.Join(names, ", ")
		if c.MoreFiles > 0 {
			s += fmt.Sprintf(" and %d more", c.MoreFiles)
		}
		return s
	case c.Kind == InputContext && c.NoListing:
		return "input changed: " + what + " (file listing not kept, cannot name files)"
	case c.Step != nil:
		return "input changed: " + what + " (" + stepWords(c.Step) + ")"
	}
	return fmt.Sprintf("input changed: %s now %s (was %s)", what, shortDigest(c.New), shortDigest(c.Old))
}

func inputName(c InputChange) string {
	switch c.Kind {
	case InputContext:
		if c.Name == "" {
			return "build context files"
		}
		return "build context " + c.Name + " files"
	case InputURL:
		return c.Name
	}
	return string(c.Kind) + " " + c.Name
}
