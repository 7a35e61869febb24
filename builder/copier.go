package builder

// CopyRequest is one COPY or ADD step for [Copy] to perform.
type CopyRequest struct {
	// Op is the planned operation (Step.Copy).
	Op *CopyOp
	// Src is where Op.Sources are read: the build context, or the root
	// filesystem of the stage or image of --from. Unused when the step has
	// only URL and heredoc sources.
	Src Tree
	// Fetched are the URL sources of an ADD, downloaded beforehand with
	// [Fetch] (Copy runs where no network I/O may happen), in the order
	// they appear in Op.Sources.
	Fetched []*Fetched
	// IDs resolves --chown names; nil reads /etc/passwd and /etc/group of
	// the destination root, like Docker.
	IDs IDLookup
}

// hasLocalSources reports whether op reads files of its source tree (not
// only URLs and heredocs).
func hasLocalSources(op *CopyOp) bool {
	for _, s := range op.Sources {
		if !op.Add || !isURL(s) {
			return true
		}
	}
	return false
}
