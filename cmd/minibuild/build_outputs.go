package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"minibuild/builder"
	"minibuild/cache"
)

// parseCSV splits a BuildKit-style "key=value,key=value" flag value; values
// may be quoted like CSV fields.
func parseCSV(flag, s string) (map[string]string, error) {
	r := csv.NewReader(strings.NewReader(s))
	fields, err := r.Read()
	if err != nil {
		return nil, &usageError{fmt.Errorf("%s %q: %w", flag, s, err)}
	}
	m := map[string]string{}
	for _, f := range fields {
		k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		k = strings.ToLower(k)
		if !ok || k == "" {
			return nil, &usageError{fmt.Errorf("%s %q: %q is not key=value", flag, s, f)}
		}
		if _, dup := m[k]; dup {
			return nil, &usageError{fmt.Errorf("%s %q: %s given twice", flag, s, k)}
		}
		m[k] = v
	}
	return m, nil
}

// onlyKeys fails when m has a key not in allowed.
func onlyKeys(flag, s string, m map[string]string, allowed ...string) error {
	for k := range m {
		if k != "type" && !slices.Contains(allowed, k) {
			return &usageError{fmt.Errorf("%s %q: unknown attribute %q for type=%s", flag, s, k, m["type"])}
		}
	}
	return nil
}

// parseOutput reads one --output value: BuildKit's CSV form, or a bare
// directory for type=local.
func parseOutput(s string) (builder.Output, error) {
	if s == "" || s == "-" {
		return builder.Output{}, &usageError{fmt.Errorf("--output %q: want type=oci|docker,dest=FILE (dest=- for standard output), type=local,dest=DIR or DIR", s)}
	}
	if !strings.Contains(s, "=") {
		return builder.Output{Type: "local", Dest: s}, nil
	}
	m, err := parseCSV("--output", s)
	if err != nil {
		return builder.Output{}, err
	}
	out := builder.Output{Type: m["type"], Dest: m["dest"]}
	switch out.Type {
	case "oci", "docker":
		err = onlyKeys("--output", s, m, "dest")
		if err == nil && out.Dest == "" {
			err = &usageError{fmt.Errorf("--output %q: type=%s needs dest=FILE (dest=- for standard output)", s, out.Type)}
		}
	case "local":
		err = onlyKeys("--output", s, m, "dest")
		if err == nil && (out.Dest == "" || out.Dest == "-") {
			err = &usageError{fmt.Errorf("--output %q: type=local needs dest=DIR", s)}
		}
	case "registry":
		err = onlyKeys("--output", s, m)
	case "":
		err = &usageError{fmt.Errorf("--output %q: missing type= (oci, docker, local or registry)", s)}
	default:
		err = &usageError{fmt.Errorf("--output %q: type %q is not supported (want oci, docker, local or registry)", s, out.Type)}
	}
	return out, err
}

// parseCacheSpec reads one --cache-from or --cache-to value. A bare value
// is a registry reference, as in BuildKit.
func parseCacheSpec(flag, s string) (builder.CacheSpec, error) {
	if s == "" {
		return builder.CacheSpec{}, &usageError{fmt.Errorf("%s: empty value", flag)}
	}
	if !strings.Contains(s, "=") {
		return builder.CacheSpec{Type: "registry", Ref: s}, nil
	}
	m, err := parseCSV(flag, s)
	if err != nil {
		return builder.CacheSpec{}, err
	}
	to := flag == "--cache-to"
	c := builder.CacheSpec{Type: m["type"], Ref: m["ref"], Mode: m["mode"]}
	if v, ok := m["ignore-error"]; ok {
		if c.IgnoreError, err = strconv.ParseBool(v); err != nil {
			return c, &usageError{fmt.Errorf("%s %q: ignore-error=%q: want true or false", flag, s, v)}
		}
	}
	// BuildKit attributes that change nothing here are accepted so CI
	// scripts written for buildx work unchanged.
	ignored := []string{"image-manifest", "oci-mediatypes", "ignore-error", "compression", "compression-level", "force-compression"}
	switch c.Type {
	case "registry":
		err = onlyKeys(flag, s, m, append(ignored, "ref", "mode")...)
		if err == nil && c.Ref == "" {
			err = &usageError{fmt.Errorf("%s %q: type=registry needs ref=REF", flag, s)}
		}
	case "local":
		dirKey := "src"
		if to {
			dirKey = "dest"
		}
		c.Dir = m[dirKey]
		err = onlyKeys(flag, s, m, append(ignored, dirKey, "mode")...)
		if err == nil && c.Dir == "" {
			err = &usageError{fmt.Errorf("%s %q: type=local needs %s=DIR", flag, s, dirKey)}
		}
	case "":
		err = &usageError{fmt.Errorf("%s %q: missing type= (registry or local)", flag, s)}
	default:
		err = &usageError{fmt.Errorf("%s %q: type %q is not supported (want registry or local)", flag, s, c.Type)}
	}
	if err != nil {
		return c, err
	}
	switch {
	case c.Mode != "" && !to:
		return c, &usageError{fmt.Errorf("%s %q: mode= is a --cache-to attribute", flag, s)}
	case c.Mode == "" && to:
		c.Mode = "min"
	case c.Mode != "" && c.Mode != "min" && c.Mode != "max":
		return c, &usageError{fmt.Errorf("%s %q: mode %q: want min or max", flag, s, c.Mode)}
	}
	return c, nil
}

// toStdout makes the one output with dest=- (if any) write to w, and
// reports whether there was one. More than one is a usage error.
func toStdout(outs []builder.Output, w io.Writer) (bool, error) {
	found := false
	for i := range outs {
		if outs[i].Dest != "-" {
			continue
		}
		if found {
			return false, &usageError{errors.New("--output: only one output can go to standard output (dest=-)")}
		}
		outs[i].Writer, found = w, true
	}
	return found, nil
}

// writeIIDFile writes the image ID, the config digest, like docker build
// --iidfile (no trailing newline).
func writeIIDFile(path string, res *builder.Result) error {
	return writeAtomic(path, func(w *bufio.Writer) error {
		_, err := w.WriteString(res.Config.String())
		return err
	})
}

// buildMetadata is the --metadata-file document: BuildKit's keys for the
// image, and minibuild's per-step cache report.
type buildMetadata struct {
	Digest       string         `json:"containerimage.digest"`
	ConfigDigest string         `json:"containerimage.config.digest"`
	Descriptor   v1.Descriptor  `json:"containerimage.descriptor"`
	Name         string         `json:"image.name,omitempty"` // comma-separated, as in BuildKit
	Steps        []stepMetadata `json:"minibuild.steps"`
}

// stepMetadata is one step in --metadata-file.
type stepMetadata struct {
	Name       string  `json:"name"`
	Stage      string  `json:"stage,omitempty"`
	Line       int     `json:"line,omitempty"`
	Cached     bool    `json:"cached"`
	Key        string  `json:"key,omitempty"`
	DurationMS float64 `json:"duration_ms"`
	// Reason words why the step missed the cache; ReasonDetail is the
	// same as data (cache.Reason). Both absent for a hit.
	Reason       string        `json:"reason,omitempty"`
	ReasonDetail *cache.Reason `json:"reason_detail,omitempty"`
}

func newBuildMetadata(res *builder.Result) buildMetadata {
	md := buildMetadata{
		Digest:       res.Manifest.Digest.String(),
		ConfigDigest: res.Config.String(),
		Descriptor:   res.Manifest,
		Name:         strings.Join(res.Tags, ","),
		Steps:        []stepMetadata{},
	}
	for _, st := range res.Steps {
		sm := stepMetadata{
			Name:       st.Name,
			Stage:      st.Stage,
			Line:       st.Location.Start,
			Cached:     st.Cached,
			DurationMS: millis(st.Duration),
		}
		if st.Key != (v1.Hash{}) {
			sm.Key = st.Key.String()
		}
		if !st.Cached && st.Reason.Kind != "" {
			r := st.Reason
			sm.Reason, sm.ReasonDetail = r.String(), &r
		}
		md.Steps = append(md.Steps, sm)
	}
	return md
}

func writeMetadataFile(path string, res *builder.Result) error {
	b, err := json.MarshalIndent(newBuildMetadata(res), "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return writeAtomic(path, func(w *bufio.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}
