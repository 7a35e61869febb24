package oci

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// HostPlatform is the platform images built and run here have: linux and
// the architecture minibuild was built for, with the variant Docker
// assumes for it (arm64 → v8, arm → v7).
func HostPlatform() v1.Platform {
	return normalizePlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH})
}

// ParsePlatform parses "os/arch[/variant]" ("linux/arm64", "linux/arm/v7");
// "" is [HostPlatform]. Architecture aliases (x86_64, aarch64) are
// normalized. Errors wrap [ErrInvalid].
func ParsePlatform(s string) (v1.Platform, error) {
	if s == "" {
		return HostPlatform(), nil
	}
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" || strings.Contains(s, ",") {
		return v1.Platform{}, fmt.Errorf("platform %q: %w: want os/arch[/variant]", s, ErrInvalid)
	}
	return normalizePlatform(*p), nil
}

// normalizePlatform spells a platform the way registries do (containerd's
// rules): lowercase, architecture aliases resolved, default variants
// filled in for arm and arm64.
func normalizePlatform(p v1.Platform) v1.Platform {
	p.OS = strings.ToLower(p.OS)
	p.Architecture = strings.ToLower(p.Architecture)
	p.Variant = strings.ToLower(p.Variant)
	switch p.Architecture {
	case "x86_64", "x86-64":
		p.Architecture = "amd64"
	case "i386", "i686":
		p.Architecture = "386"
	case "aarch64":
		p.Architecture = "arm64"
	case "armhf":
		p.Architecture, p.Variant = "arm", "v7"
	case "armel":
		p.Architecture, p.Variant = "arm", "v6"
	}
	switch {
	case p.Architecture == "arm64" && (p.Variant == "" || p.Variant == "8"):
		p.Variant = "v8"
	case p.Architecture == "arm" && p.Variant == "":
		p.Variant = "v7"
	case p.Architecture == "arm" && len(p.Variant) == 1:
		p.Variant = "v" + p.Variant // "7" → "v7"
	}
	return p
}

// platformScore rates how well an image for have runs on want: 0 not at
// all; otherwise higher is better. An exact variant wins; an older arm
// variant runs on a newer CPU (v6 on v7) and the closest one is best.
func platformScore(want, have v1.Platform) int {
	want, have = normalizePlatform(want), normalizePlatform(have)
	if want.OS != have.OS || want.Architecture != have.Architecture {
		return 0
	}
	if want.Variant == have.Variant {
		return 100
	}
	if want.Architecture == "arm" {
		w, werr := strconv.Atoi(strings.TrimPrefix(want.Variant, "v"))
		h, herr := strconv.Atoi(strings.TrimPrefix(have.Variant, "v"))
		if werr == nil && herr == nil && h < w {
			return 50 - (w - h)
		}
		return 0
	}
	if have.Variant == "" || want.Variant == "" {
		return 10 // amd64 and others: a variant-less image runs anywhere
	}
	return 0
}

// choosePlatform picks the manifest for want from an index's entries: the
// best score, the first of equals (Docker's order).
func choosePlatform(index v1.Hash, ms []v1.Descriptor, want v1.Platform) (v1.Descriptor, error) {
	best, bestScore := -1, 0
	var have []string
	for i, m := range ms {
		if m.Platform == nil || !isManifestType(m.MediaType) {
			continue
		}
		if m.Platform.OS != "unknown" {
			have = append(have, m.Platform.String())
		}
		if sc := platformScore(want, *m.Platform); sc > bestScore {
			best, bestScore = i, sc
		}
	}
	if best < 0 {
		return v1.Descriptor{}, fmt.Errorf("index %s has no image for %s (it has %s): %w",
			index, want, orNone(strings.Join(have, ", ")), ErrNotFound)
	}
	d := ms[best]
	return d, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// configPlatform is the platform an image config declares.
func configPlatform(cfg *v1.ConfigFile) v1.Platform {
	return normalizePlatform(v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant, OSVersion: cfg.OSVersion})
}
