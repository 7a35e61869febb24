package builder

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"minibuild/cache"
)

// dispatchCopy plans a COPY: sources, destination resolved against
// WORKDIR, --from, --chown, --chmod, --link, --parents and --exclude. The
// files themselves are selected when the step runs ([Copy]).
func dispatchCopy(st *stageState, step *Step, c *instructions.CopyCommand, from *CopyFrom, done map[*Stage]*stageState) error {
	for _, src := range c.SourcePaths {
		if isURL(src) {
			return errors.New("source can't be a URL for COPY")
		}
		if isGitSource(src) {
			return errors.New("source can't be a git ref for COPY")
		}
	}
	op := &CopyOp{Parents: c.Parents}
	if from != nil {
		if s := from.Stage; s != nil {
			if _, ok := done[s]; !ok || s.Index >= st.stage.Index {
				return fmt.Errorf("cannot copy from stage %q, it needs to be defined before current stage %q", c.From, st.stage.DisplayName)
			}
		}
		op.From = *from
	}
	if err := st.planCopy(op, c.SourcesAndDest, c.Chown, c.Chmod, c.Link, c.ExcludePatterns); err != nil {
		return err
	}
	step.Copy = op
	in := copyInstruction("COPY", op, c.SourcesAndDest)
	if c.From != "" {
		in.Flags = append(in.Flags, cache.Flag{Name: "from", Value: c.From})
	}
	if c.Parents {
		in.Flags = append(in.Flags, cache.Flag{Name: "parents", Value: "true"})
	}
	step.keyInstruction(in, copyObserves(c.DestPath))
	st.commit(step, copyHistory("COPY", op, c.SourcesAndDest), true)
	return nil
}

// planCopy fills what COPY and ADD share.
func (st *stageState) planCopy(op *CopyOp, sd instructions.SourcesAndDest, chown, chmod string, link bool, excludes []string) error {
	op.Sources = append([]string(nil), sd.SourcePaths...)
	for _, h := range sd.SourceContents {
		op.Heredocs = append(op.Heredocs, InlineFile{Path: h.Path, Data: h.Data, Mode: 0o644})
	}
	op.Dest = destPath(st.config.Config.WorkingDir, sd.DestPath)
	op.Link, op.Excludes = link, excludes
	if chown != "" {
		if link && chownByName(chown) {
			return fmt.Errorf("--chown=%s: user and group names can't be resolved when used with --link, use numeric uid[:gid] instead", chown)
		}
		op.Chown = chown
	}
	if chmod != "" {
		m, err := ParseChmod(chmod)
		if err != nil {
			return err
		}
		op.Chmod = m
	}
	return nil
}

// destPath resolves a COPY/ADD destination against the working directory
// like BuildKit's pathRelativeToWorkingDir: "." and "" mean the working
// directory itself (as a directory), a trailing "/" or "/." is kept.
func destPath(workdir, p string) string {
	if p == "." || p == "" {
		p = "./"
	}
	keepSlash := strings.HasSuffix(p, "/")
	keepDot := strings.HasSuffix(p, "/.")
	out := p
	if !strings.HasPrefix(p, "/") {
		if workdir == "" {
			workdir = "/"
		}
		out = path.Join(workdir, p)
	}
	if !strings.HasPrefix(out, "/") {
		out = "/" + out
	}
	switch {
	case keepSlash && !strings.HasSuffix(out, "/"):
		out += "/"
	case keepDot && !strings.HasSuffix(out, "/."):
		if out != "/" {
			out += "/"
		}
		out += "."
	}
	return out
}

// copyHistory is BuildKit's created_by for COPY/ADD: the name, --parents,
// --chown, --chmod, the sources as expanded, "<<NAME" per heredoc, and the
// destination as written (expanded).
func copyHistory(name string, op *CopyOp, sd instructions.SourcesAndDest) string {
	parts := []string{name}
	if op.Parents {
		parts = append(parts, "--parents")
	}
	if op.Chown != "" {
		parts = append(parts, "--chown="+op.Chown)
	}
	if op.Chmod != nil {
		parts = append(parts, "--chmod="+op.Chmod.String())
	}
	parts = append(parts, op.Sources...)
	for _, h := range op.Heredocs {
		parts = append(parts, "<<"+h.Path)
	}
	parts = append(parts, sd.DestPath)
	return strings.Join(parts, " ")
}

// copyInstruction is the shared part of the COPY/ADD key instruction:
// --chown, --chmod, --exclude and --link, the sources as expanded, "<<NAME"
// for each heredoc (its body follows the arguments) and the destination
// as written (relative to WORKDIR, which the key then observes).
func copyInstruction(name string, op *CopyOp, sd instructions.SourcesAndDest) cache.Instruction {
	in := cache.Instruction{Keyword: name, Args: []string{}}
	if op.Chown != "" {
		in.Flags = append(in.Flags, cache.Flag{Name: "chown", Value: op.Chown})
	}
	if op.Chmod != nil {
		in.Flags = append(in.Flags, cache.Flag{Name: "chmod", Value: op.Chmod.String()})
	}
	for _, e := range op.Excludes {
		in.Flags = append(in.Flags, cache.Flag{Name: "exclude", Value: e})
	}
	if op.Link {
		in.Flags = append(in.Flags, cache.Flag{Name: "link", Value: "true"})
	}
	in.Args = append(in.Args, op.Sources...)
	for _, h := range op.Heredocs {
		in.Args = append(in.Args, "<<"+h.Path)
		in.Heredocs = append(in.Heredocs, cache.Heredoc{Name: h.Path, Body: h.Data})
	}
	in.Args = append(in.Args, sd.DestPath)
	return in
}

// copyObserves is what a COPY/ADD key includes of the stage's state: the
// working directory when the destination is relative to it.
func copyObserves(dest string) cache.Observes {
	if strings.HasPrefix(dest, "/") {
		return cache.ObservesCopy
	}
	return cache.ObservesCopyRelative
}

// chownByName reports whether a --chown value names a user or group (not
// numeric, not "root"): those need the image's /etc/passwd or /etc/group.
func chownByName(chown string) bool {
	user, group, _ := strings.Cut(chown, ":")
	return isName(user) || (group != "" && isName(group))
}

func isName(s string) bool {
	if s == "root" {
		return false
	}
	_, err := strconv.ParseInt(s, 10, 32)
	return err != nil
}

func isURL(src string) bool {
	return strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://")
}

// isGitSource recognizes the git forms BuildKit's ADD accepts, so they can
// be refused clearly (minibuild does not fetch git repositories).
func isGitSource(src string) bool {
	if strings.HasPrefix(src, "git@") || strings.HasPrefix(src, "git://") || strings.HasPrefix(src, "ssh://") {
		return true
	}
	if !isURL(src) {
		return false
	}
	u, _, _ := strings.Cut(src, "#")
	return strings.HasSuffix(u, ".git")
}
