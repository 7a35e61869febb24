package oci

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// dockerHub is how minibuild spells Docker Hub's registry in names, like
// Docker does (go-containerregistry says index.docker.io).
const dockerHub = "docker.io"

// ParseName normalizes an image reference the way Docker does:
// "busybox" → "docker.io/library/busybox:latest", "me/app:1" →
// "docker.io/me/app:1", "localhost:5000/app" → "localhost:5000/app:latest";
// a digest reference keeps its digest and gets no tag. Invalid names wrap
// [ErrInvalid].
func ParseName(s string) (string, error) {
	ref, err := name.ParseReference(s)
	if err != nil {
		return "", fmt.Errorf("image name %q: %w: %w", s, ErrInvalid, err)
	}
	repo := ref.Context()
	reg, path := repo.RegistryStr(), repo.RepositoryStr()
	if reg == name.DefaultRegistry || reg == dockerHub || reg == "registry-1.docker.io" {
		reg = dockerHub
		if !strings.Contains(path, "/") {
			path = "library/" + path
		}
	}
	if isHex64(path[strings.LastIndex(path, "/")+1:]) {
		// Docker refuses these too: they read like image IDs.
		return "", fmt.Errorf("image name %q: %w: repository name looks like a digest", s, ErrInvalid)
	}
	switch r := ref.(type) {
	case name.Digest:
		return reg + "/" + path + "@" + r.DigestStr(), nil
	case name.Tag:
		return reg + "/" + path + ":" + r.TagStr(), nil
	}
	return "", fmt.Errorf("image name %q: %w", s, ErrInvalid)
}

// parseTagName is ParseName for names that must be tags, not digests.
func parseTagName(s string) (string, error) {
	n, err := ParseName(s)
	if err != nil {
		return "", err
	}
	if strings.Contains(n, "@") {
		return "", fmt.Errorf("image name %q: %w: a tag cannot be a digest reference", s, ErrInvalid)
	}
	return n, nil
}

// familiarName is how Docker prints a normalized name: without
// "docker.io/library/" or "docker.io/".
func familiarName(n string) string {
	if rest, ok := strings.CutPrefix(n, dockerHub+"/library/"); ok && !strings.Contains(rest, "/") {
		return rest
	}
	if rest, ok := strings.CutPrefix(n, dockerHub+"/"); ok {
		return rest
	}
	return n
}

// parseDigestRef recognizes "sha256:<64 hex>" and "NAME@sha256:<64 hex>".
func parseDigestRef(ref string) (v1.Hash, bool, error) {
	if i := strings.LastIndexByte(ref, '@'); i >= 0 {
		if _, err := ParseName(ref[:i]); err != nil {
			return v1.Hash{}, false, err
		}
		h, err := v1.NewHash(ref[i+1:])
		if err == nil {
			err = checkHash(h)
		}
		if err != nil {
			return v1.Hash{}, false, fmt.Errorf("image reference %q: %w: %w", ref, ErrInvalid, err)
		}
		return h, true, nil
	}
	if hx, ok := strings.CutPrefix(ref, "sha256:"); ok && isHex64(hx) {
		return v1.Hash{Algorithm: "sha256", Hex: hx}, true, nil
	}
	return v1.Hash{}, false, nil
}

// hexPrefix recognizes a short image ID: 1 to 64 lowercase hex digits,
// optionally after "sha256:".
func hexPrefix(ref string) (string, bool) {
	p := strings.TrimPrefix(ref, "sha256:")
	if p == "" || len(p) > 64 {
		return "", false
	}
	for _, c := range []byte(p) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", false
		}
	}
	return p, true
}
