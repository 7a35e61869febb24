package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"minibuild/exec"
	"minibuild/oci"
)

// RunRequest is `minibuild run IMAGE [CMD…]`: a container of a stored
// image in the RUN sandbox, removed when it exits.
type RunRequest struct {
	// Image is a tag or digest in the store.
	Image string
	// Args replace the image's CMD (appended to its ENTRYPOINT); nil keeps
	// CMD.
	Args []string
	// Entrypoint, if non-nil, replaces the image's ENTRYPOINT (an empty
	// slice clears it).
	Entrypoint []string
	// Env are "KEY=VALUE" values set over the image's ENV (-e; the CLI
	// resolves a bare -e KEY from its own environment).
	Env []string
	// User and Workdir, if set, replace the image's USER and WORKDIR.
	User, Workdir string
	// Network is "" or "host" (the host's network) or "none".
	Network string
	// Stdout and Stderr receive the output; nil discards it.
	Stdout, Stderr io.Writer
}

// Run runs a container of req.Image: its layers' snapshots as the lower
// directories (unpacked if missing), a throwaway upper directory, the
// config's entrypoint, command, environment, user and working directory.
// It returns nil when the command exits 0, an *exec.ExitError with the
// exit code otherwise. Nothing is left behind: no process, no mount, and
// the upper directory is deleted.
func (b *Builder) Run(ctx context.Context, req RunRequest) (err error) {
	desc, err := b.store.Resolve(req.Image)
	if err != nil {
		return fmt.Errorf("run %s: %w", req.Image, err)
	}
	img, err := newStoreImages(b.store, oci.PullNever, newEmitter(nil)).load(req.Image, desc)
	if err != nil {
		return fmt.Errorf("run %s: %w", req.Image, err)
	}
	chain, err := imageChain(img)
	if err != nil {
		return fmt.Errorf("run %s: %w", req.Image, err)
	}
	lowers, err := b.snaps.lowers(ctx, chain, nil)
	if err != nil {
		return fmt.Errorf("run %s: %w", req.Image, err)
	}
	if len(lowers) == 0 {
		return fmt.Errorf("run %s: the image has no layers", req.Image)
	}
	spec, err := runSpec(img, req)
	if err != nil {
		return fmt.Errorf("run %s: %w", req.Image, err)
	}
	dir, err := b.store.TempDir("container")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
	spec.Root = exec.RootSpec{Lower: lowers, Upper: dir + "/upper", Work: dir + "/work"}
	b.traced("run")
	return exec.Run(ctx, spec)
}

// runSpec is the process of a container: Docker's rules for ENTRYPOINT,
// CMD and their overrides.
func runSpec(img *BaseImage, req RunRequest) (exec.Spec, error) {
	cfg := img.Config.Config
	entry := cfg.Entrypoint
	if req.Entrypoint != nil {
		entry = req.Entrypoint
	}
	cmd := cfg.Cmd
	if req.Args != nil || req.Entrypoint != nil {
		cmd = req.Args // a new entrypoint drops the image's CMD, like docker run
	}
	args := append(slices.Clone(entry), cmd...)
	if len(args) == 0 {
		return exec.Spec{}, errors.New("no command: the image has no ENTRYPOINT or CMD; give one")
	}
	env := slices.Clone(cfg.Env)
	for _, kv := range req.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return exec.Spec{}, fmt.Errorf("environment %q: want KEY=VALUE", kv)
		}
		env = setEnv(env, k, v)
	}
	switch req.Network {
	case "", "host", "none":
	default:
		return exec.Spec{}, fmt.Errorf("network %q: want host or none: %w", req.Network, ErrUnsupported)
	}
	return exec.Spec{
		Args:    args,
		Env:     env,
		Cwd:     cmpOr(req.Workdir, cfg.WorkingDir),
		User:    cmpOr(req.User, cfg.User),
		Network: exec.Network(cmpOr(req.Network, "host")),
		Stdout:  req.Stdout,
		Stderr:  req.Stderr,
	}, nil
}
