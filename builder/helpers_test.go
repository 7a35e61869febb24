package builder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// fakeImages is an ImageSource over a map of reference → image.
type fakeImages map[string]*BaseImage

func (f fakeImages) Image(_ context.Context, ref string, _ v1.Platform) (*BaseImage, error) {
	img, ok := f[ref]
	if !ok {
		return nil, fmt.Errorf("image %q: %w", ref, ErrNotFound)
	}
	return img, nil
}

// testImage is an image config with the given settings.
func testImage(name string, cfg v1.Config) *BaseImage {
	return &BaseImage{
		Name:   name,
		Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)},
		Config: &v1.ConfigFile{
			Architecture: "amd64",
			OS:           "linux",
			RootFS:       v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{{Algorithm: "sha256", Hex: strings.Repeat("b", 64)}}},
			History:      []v1.History{{CreatedBy: "base layer"}},
			Config:       cfg,
		},
	}
}

// parseDockerfile writes text as the Dockerfile of a fresh context and
// parses it.
func parseDockerfile(t *testing.T, text string, req Request, images ImageSource) (*Plan, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	req.Context = dir
	if req.Platform == "" {
		req.Platform = "linux/amd64"
	}
	return Parse(context.Background(), req, images)
}

func mustParse(t *testing.T, text string, req Request, images ImageSource) *Plan {
	t.Helper()
	p, err := parseDockerfile(t, text, req, images)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

// createdBy lists the history lines the target adds (base history left out).
func createdBy(p *Plan) []string {
	var out []string
	for _, s := range p.Target.Steps {
		out = append(out, s.History.CreatedBy)
	}
	return out
}
