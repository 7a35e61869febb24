package builder

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"minibuild/layer"
)

// DefaultEpoch is the time used for `created` and for clamping mtimes when
// SOURCE_DATE_EPOCH is not given: 1980-01-02T00:00:00Z ([layer.DefaultEpoch]).
const DefaultEpoch int64 = layer.DefaultEpoch

// Request is one build as the CLI asks for it. The zero value builds
// ./Dockerfile in the current directory for the host platform.
type Request struct {
	// Dockerfile is the path of the Dockerfile; "" means
	// <Context>/Dockerfile.
	Dockerfile string
	// Context is the build context directory; "" means ".".
	Context string
	// Target is the stage to build; "" means the last one.
	Target string
	// BuildArgs are --build-arg values. SOURCE_DATE_EPOCH, when present,
	// sets the build's epoch like BuildKit.
	BuildArgs map[string]string
	// BuildContexts are --build-context name=value pairs, BuildKit syntax:
	// "oci-layout://PATH[:TAG|@DIGEST]", "docker-image://REF", or a local
	// directory.
	BuildContexts map[string]string
	// Platform is the target platform, "os/arch[/variant]"; "" means
	// linux and the host architecture.
	Platform string
	// Labels are added to the target image's config (--label).
	Labels map[string]string
	// Tags name the resulting image in the store (-t).
	Tags []string
	// NoCache disables cache lookups for every step.
	NoCache bool
	// NoCacheFilter lists stages (by name or index) whose steps are not
	// looked up in the cache (--no-cache-filter).
	NoCacheFilter []string
	// Pull is the policy for images named by FROM and COPY --from.
	Pull PullPolicy
	// Network is the default network of RUN steps: "" or "host" (the
	// host's network), or "none". RUN --network overrides it per step.
	Network string
	// Jobs bounds how many stages and COPY --link steps run at once;
	// 0 means the number of CPUs.
	Jobs int
	// Compression is how new layers are compressed: "gzip" (or ""),
	// "zstd" or "none". A layer taken from the cache keeps the
	// compression it was stored with.
	Compression string
	// KeyMaterial, if set, receives every filesystem step's key material
	// (cache.WriteKeyMaterial: the key, the canonical bytes hashed, the
	// listing of each context input), for comparing two builds with diff.
	KeyMaterial io.Writer
	// Outputs say where the image goes besides the store (--output).
	Outputs []Output
	// Push pushes the image to the registry of every tag (--push).
	Push bool
	// CacheFrom and CacheTo are shared caches to read and to write
	// (--cache-from, --cache-to).
	CacheFrom, CacheTo []CacheSpec
	// Progress receives the build's events; nil discards them.
	Progress ProgressFunc
}

// PullPolicy says when a FROM image is fetched from its registry.
type PullPolicy string

// Pull policies, as in `docker build --pull`.
const (
	// PullMissing uses the store's copy when it has one, with no network
	// request; the default.
	PullMissing PullPolicy = "missing"
	// PullAlways asks the registry for the current digest of the tag.
	PullAlways PullPolicy = "always"
	// PullNever uses only the store.
	PullNever PullPolicy = "never"
)

// Output is one --output destination.
type Output struct {
	// Type is "oci" or "docker" (an archive at Dest), "local" (the root
	// filesystem into directory Dest) or "registry" (push, like --push).
	Type string
	Dest string
	// Writer, if set, receives an "oci" or "docker" archive instead of
	// the file Dest (for "--output -", the CLI's stdout).
	Writer io.Writer
}

// CacheSpec is one --cache-from or --cache-to value.
type CacheSpec struct {
	// Type is "registry" (Ref names an OCI artifact) or "local" (Dir is
	// an OCI layout directory).
	Type string
	Ref  string
	Dir  string
	// Mode is "min" (records of the final stage's steps) or "max" (every
	// step); --cache-to only.
	Mode string
	// IgnoreError makes a --cache-to that cannot be written a warning
	// instead of the build's error (BuildKit's ignore-error=true).
	IgnoreError bool
}

// BaseImage is an image a stage starts from or copies from, as an
// [ImageSource] resolved it.
type BaseImage struct {
	// Name is the reference as the store knows it, e.g.
	// "docker.io/library/busybox:latest"; it becomes the
	// org.opencontainers.image.base.name annotation.
	Name string
	// Digest is the manifest digest (org.opencontainers.image.base.digest).
	Digest v1.Hash
	// Config is the image's config file. Parse deep-copies it before
	// changing anything.
	Config *v1.ConfigFile
	// Layers are the manifest's layer descriptors, bottom first, one per
	// Config.RootFS.DiffIDs entry. An ImageSource that only serves
	// configs (planning without building) may leave them out.
	Layers []v1.Descriptor
}

// ImageSource resolves the images a Dockerfile names (FROM, COPY --from, and
// --build-context values of the oci-layout:// and docker-image:// forms).
type ImageSource interface {
	// Image returns the image ref names for platform. ref is the name as
	// the Dockerfile spells it after ARG expansion ("busybox",
	// "busybox@sha256:…") or a build context value
	// ("oci-layout:///path:tag"). A missing image returns an error
	// wrapping [ErrNotFound].
	Image(ctx context.Context, ref string, platform v1.Platform) (*BaseImage, error)
}

// buildContextKind is what a --build-context value names.
type buildContextKind int

const (
	contextDir buildContextKind = iota
	contextImage
)

// namedContext is one parsed --build-context entry.
type namedContext struct {
	kind  buildContextKind
	value string // directory (absolute) or image reference for ImageSource
}

// parseBuildContext classifies a --build-context value like BuildKit's
// dockerui: docker-image:// and oci-layout:// name images, anything else
// is a local directory.
func parseBuildContext(v string) (namedContext, error) {
	switch {
	case strings.HasPrefix(v, "docker-image://"):
		ref := strings.TrimPrefix(v, "docker-image://")
		if ref == "" {
			return namedContext{}, fmt.Errorf("build context %q: empty image reference", v)
		}
		return namedContext{kind: contextImage, value: ref}, nil
	case strings.HasPrefix(v, "oci-layout://"):
		return namedContext{kind: contextImage, value: v}, nil
	case strings.Contains(v, "://"):
		return namedContext{}, fmt.Errorf("build context %q: %w", v, ErrUnsupported)
	}
	dir, err := filepath.Abs(v)
	if err != nil {
		return namedContext{}, fmt.Errorf("build context %q: %w", v, err)
	}
	return namedContext{kind: contextDir, value: dir}, nil
}

// contextKey normalizes an image-like name for --build-context lookups the
// way BuildKit does: "docker.io/library/alpine:latest", "library/alpine"
// and "alpine" are one key.
func contextKey(name string) string {
	n := strings.ToLower(name)
	n = strings.TrimPrefix(n, "docker.io/")
	n = strings.TrimPrefix(n, "index.docker.io/")
	n = strings.TrimPrefix(n, "library/")
	return strings.TrimSuffix(n, ":latest")
}

// targetPlatform parses Request.Platform, defaulting to the host.
func targetPlatform(s string) (v1.Platform, error) {
	if s == "" {
		p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
		if p.Architecture == "arm" {
			p.Variant = "v7"
		}
		return p, nil
	}
	p, err := v1.ParsePlatform(s)
	if err != nil {
		return v1.Platform{}, fmt.Errorf("parse platform %q: %w", s, err)
	}
	if p.OS == "" || p.Architecture == "" {
		return v1.Platform{}, fmt.Errorf("parse platform %q: want os/arch[/variant]", s)
	}
	return *p, nil
}

// formatPlatform is "os/arch[/variant]".
func formatPlatform(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// epochFrom returns SOURCE_DATE_EPOCH from the build args, or
// [DefaultEpoch].
func epochFrom(args map[string]string) (time.Time, error) {
	v, ok := args["SOURCE_DATE_EPOCH"]
	if !ok || v == "" {
		return time.Unix(DefaultEpoch, 0).UTC(), nil
	}
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil || sec < 0 {
		return time.Time{}, fmt.Errorf("parse SOURCE_DATE_EPOCH %q: want non-negative seconds since 1970", v)
	}
	return time.Unix(sec, 0).UTC(), nil
}
