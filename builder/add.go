package builder

import (
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"minibuild/cache"
)

// dispatchAdd plans an ADD: like COPY from the build context, plus http(s)
// URL sources (downloaded, verified with --checksum), and local tar
// archives extracted into the destination (--unpack, default on for local
// sources and off for URLs).
func dispatchAdd(st *stageState, step *Step, c *instructions.AddCommand) error {
	for _, src := range c.SourcePaths {
		if isGitSource(src) {
			return fmt.Errorf("ADD from a git repository (%s): %w", src, ErrUnsupported)
		}
	}
	if c.KeepGitDir != nil {
		return fmt.Errorf("ADD --keep-git-dir: %w (no git sources)", ErrUnsupported)
	}
	op := &CopyOp{Add: true, Unpack: true, Checksum: c.Checksum}
	if c.Unpack != nil {
		op.Unpack, op.UnpackURL = *c.Unpack, *c.Unpack
	}
	if c.Checksum != "" {
		if len(c.SourcePaths) != 1 || len(c.SourceContents) != 0 {
			return errors.New("checksum can't be specified for multiple sources")
		}
		if !isURL(c.SourcePaths[0]) {
			return errors.New("checksum requires HTTP(S) or Git sources")
		}
		if !isSHA256Digest(c.Checksum) {
			return fmt.Errorf("invalid checksum %q: want sha256:<64 hex digits>", c.Checksum)
		}
	}
	if err := st.planCopy(op, c.SourcesAndDest, c.Chown, c.Chmod, c.Link, c.ExcludePatterns); err != nil {
		return err
	}
	step.Copy = op
	in := copyInstruction("ADD", op, c.SourcesAndDest)
	if c.Checksum != "" {
		in.Flags = append(in.Flags, cache.Flag{Name: "checksum", Value: c.Checksum})
	}
	if c.Unpack != nil {
		in.Flags = append(in.Flags, cache.Flag{Name: "unpack", Value: fmt.Sprint(*c.Unpack)})
	}
	step.keyInstruction(in, copyObserves(c.DestPath))
	st.commit(step, copyHistory("ADD", op, c.SourcesAndDest), true)
	return nil
}

// isSHA256Digest accepts "sha256:" and 64 lowercase hex digits, the only
// --checksum form for HTTP sources.
func isSHA256Digest(s string) bool {
	hex, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(hex) != 64 {
		return false
	}
	return strings.Trim(hex, "0123456789abcdef") == ""
}
