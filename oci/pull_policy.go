package oci

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// PullPolicy says when [Store.ResolveBase] asks the registry.
type PullPolicy int

// The pull policies of `--pull`, Docker's and BuildKit's names.
const (
	// PullMissing uses the image in the store when there is one, without
	// any network request (a rebuild works offline), and pulls otherwise.
	PullMissing PullPolicy = iota
	// PullAlways asks the registry what the tag points at now (a HEAD
	// request) and pulls if that is not what the store has. A digest
	// reference in the store is used as is: its content cannot change.
	PullAlways
	// PullNever uses the store only.
	PullNever
)

// String returns the policy's flag value.
func (p PullPolicy) String() string {
	switch p {
	case PullMissing:
		return "missing"
	case PullAlways:
		return "always"
	case PullNever:
		return "never"
	}
	return fmt.Sprintf("PullPolicy(%d)", int(p))
}

// ParsePullPolicy parses a `--pull` value: "missing" (or ""), "always",
// "never"; "true" and "false" as BuildKit's boolean --pull (always,
// missing). Errors wrap [ErrInvalid].
func ParsePullPolicy(s string) (PullPolicy, error) {
	switch strings.ToLower(s) {
	case "", "missing", "false":
		return PullMissing, nil
	case "always", "true":
		return PullAlways, nil
	case "never":
		return PullNever, nil
	}
	return 0, fmt.Errorf("pull policy %q: %w: want missing, always or never", s, ErrInvalid)
}

// ResolveBase finds the image a FROM line names, following policy, and
// returns the descriptor of its manifest in the store (for a
// multi-platform image, the platform's manifest; see [PullOptions]).
//
// The store answers for a tag it has, for a pin ("name@sha256:…") whose
// digest is an image in the store or a repo digest a pull recorded, and
// for a multi-platform index imported into the store (its platform's
// manifest). Under [PullMissing] such an answer involves no network
// request at all; under [PullAlways] a tag is checked with one HEAD
// request; under [PullNever] an image the store lacks is an error wrapping
// [ErrNotFound] that says how to get it. Pulls are [Store.Pull] with opts.
func (s *Store) ResolveBase(ctx context.Context, ref string, policy PullPolicy, opts PullOptions) (v1.Descriptor, error) {
	n, err := ParseName(ref)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("resolve base: %w", err)
	}
	local, found, err := s.localBase(n, opts.platform())
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("resolve base %s: %w", n, err)
	}
	switch policy {
	case PullMissing:
		if found {
			return local, nil
		}
	case PullNever:
		if found {
			return local, nil
		}
		return v1.Descriptor{}, fmt.Errorf("resolve base %s: image not in the store and the pull policy is never (run `minibuild pull %s`, or `minibuild import` an archive of it): %w",
			n, familiarName(n), ErrNotFound)
	case PullAlways:
		if found && strings.Contains(n, "@") {
			return local, nil
		}
		if found {
			current, err := s.remoteDigest(ctx, n, opts.Jobs)
			if err != nil {
				return v1.Descriptor{}, err
			}
			repo := n[:strings.LastIndexByte(n, ':')] // a normalized tag always ends in :TAG
			if local.Digest == current || slices.Contains(repoDigests(local), repo+"@"+current.String()) {
				return local, nil
			}
		}
	default:
		return v1.Descriptor{}, fmt.Errorf("resolve base %s: pull policy %d: %w", n, int(policy), ErrInvalid)
	}
	return s.Pull(ctx, n, opts)
}

// localBase finds what the normalized name n means in the store for
// platform want, reading nothing but index.json and local blobs.
func (s *Store) localBase(n string, want v1.Platform) (v1.Descriptor, bool, error) {
	idx, err := s.readIndex()
	if err != nil {
		return v1.Descriptor{}, false, err
	}
	_, pin, isPin := strings.Cut(n, "@")
	for _, e := range idx.Manifests {
		exact := isPin && e.Digest.String() == pin
		switch {
		case exact, !isPin && refName(e) == n:
		case isPin && slices.Contains(repoDigests(e), n):
		default:
			continue
		}
		if isIndexType(e.MediaType) {
			d, ok, err := s.localChild(e, want)
			if err != nil || ok {
				return d, ok, err
			}
			continue
		}
		// An exact pin is what the user asked for, whatever its platform.
		if exact || e.Platform == nil || platformScore(want, *e.Platform) > 0 {
			return e, true, nil
		}
	}
	return v1.Descriptor{}, false, nil
}

// localChild picks the platform's manifest of an index in the store.
func (s *Store) localChild(index v1.Descriptor, want v1.Platform) (v1.Descriptor, bool, error) {
	raw, err := s.readVerified(index)
	if err != nil {
		return v1.Descriptor{}, false, err
	}
	idx, err := parseIndex(raw, index)
	if err != nil {
		return v1.Descriptor{}, false, err
	}
	c, err := choosePlatform(index.Digest, idx.Manifests, want)
	if errors.Is(err, ErrNotFound) {
		return v1.Descriptor{}, false, nil
	}
	if err != nil {
		return v1.Descriptor{}, false, err
	}
	if !s.HasBlob(c.Digest) {
		return v1.Descriptor{}, false, nil
	}
	return v1.Descriptor{MediaType: c.MediaType, Size: c.Size, Digest: c.Digest, Platform: c.Platform}, true, nil
}

// remoteDigest asks the registry what the normalized tag n points at: a
// HEAD request, or a GET for registries that do not answer HEAD well.
func (s *Store) remoteDigest(ctx context.Context, n string, jobs int) (v1.Hash, error) {
	r, err := s.remote.reference(n)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("check %s: %w", n, err)
	}
	p, err := remote.NewPuller(s.remote.options(ctx, jobs)...)
	if err != nil {
		return v1.Hash{}, remoteErr("check", n, r.Context(), "", v1.Hash{}, err)
	}
	d, err := p.Head(ctx, r)
	if err == nil {
		return d.Digest, nil
	}
	if errors.Is(classify(r.Context(), err), ErrUnauthorized) || ctx.Err() != nil {
		return v1.Hash{}, remoteErr("check", n, r.Context(), "", v1.Hash{}, err)
	}
	gd, gerr := p.Get(ctx, r)
	if gerr != nil {
		return v1.Hash{}, remoteErr("check", n, r.Context(), "", v1.Hash{}, gerr)
	}
	return gd.Digest, nil
}
