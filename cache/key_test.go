package cache_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"minibuild/cache"
)

func hash(s string) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(s, 64/len(s))[:64]}
}

// sha is the sha256 digest of s.
func sha(s string) v1.Hash {
	sum := sha256.Sum256([]byte(s))
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// sampleParts is a RUN step with something in every field.
func sampleParts() cache.Parts {
	return cache.Parts{
		Version:     cache.KeyVersion,
		Parent:      cache.StepParent(hash("a1")),
		Instruction: "RUN --network=none make VERSION=$VERSION",
		Env: []cache.EnvVar{
			{Kind: cache.EnvENV, Name: "PATH", Value: "/usr/bin:/bin"},
			{Kind: cache.EnvARG, Name: "VERSION", Value: "1.2"},
			{Kind: cache.EnvWorkdir, Value: "/src"},
			{Kind: cache.EnvUser, Value: "build"},
			{Kind: cache.EnvShell, Value: `["/bin/sh","-c"]`},
		},
		Inputs: []cache.Input{
			{Kind: cache.InputStage, Name: "deps", Digest: hash("b2")},
		},
		Platform: "linux/amd64",
	}
}

// goldenCanonical and goldenKey pin key spec v1 (docs/cache.md has the
// same example). If this test fails, the key schema changed: bump
// KeyVersion, update docs/cache.md, then these values.
const (
	goldenCanonical = `{"version":"minibuild.step.v1",` +
		`"parent":{"kind":"step","digest":"sha256:a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"},` +
		`"instruction":"RUN --network=none make VERSION=$VERSION",` +
		`"env":[{"kind":"ARG","name":"VERSION","value":"1.2"},{"kind":"ENV","name":"PATH","value":"/usr/bin:/bin"},` +
		`{"kind":"SHELL","name":"","value":"[\"/bin/sh\",\"-c\"]"},{"kind":"USER","name":"","value":"build"},` +
		`{"kind":"WORKDIR","name":"","value":"/src"}],` +
		`"inputs":[{"kind":"stage","name":"deps","digest":"sha256:b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"}],` +
		`"platform":"linux/amd64"}`
	goldenKey = "sha256:638f4aed5788e40e702631f66d13b09335212205310217d33dcb2d3f1cbd8204"
)

func TestKeyGolden(t *testing.T) {
	t.Parallel()
	p := sampleParts()
	if got := string(p.Canonical()); got != goldenCanonical {
		t.Errorf("Canonical() = %s\nwant %s", got, goldenCanonical)
	}
	if got := p.Key().String(); got != goldenKey {
		t.Errorf("Key() = %s, want %s (schema changed? bump KeyVersion)", got, goldenKey)
	}
}

func TestKeyEveryFieldMatters(t *testing.T) {
	t.Parallel()
	mutations := []struct {
		name   string
		mutate func(p *cache.Parts)
	}{
		{"version", func(p *cache.Parts) { p.Version = "minibuild.step.v2" }},
		{"parent digest", func(p *cache.Parts) { p.Parent.Digest = hash("a2") }},
		{"parent kind", func(p *cache.Parts) { p.Parent.Kind = cache.ParentImage }},
		{"parent scratch", func(p *cache.Parts) { p.Parent = cache.Scratch }},
		{"parent none", func(p *cache.Parts) { p.Parent = cache.Parent{Kind: cache.ParentNone} }},
		{"instruction", func(p *cache.Parts) { p.Instruction += " " }},
		{"env value", func(p *cache.Parts) { p.Env[1].Value = "1.3" }},
		{"env name", func(p *cache.Parts) { p.Env[1].Name = "VERSION2" }},
		{"env kind", func(p *cache.Parts) { p.Env[1].Kind = cache.EnvENV }},
		{"env added", func(p *cache.Parts) { p.Env = append(p.Env, cache.EnvVar{Kind: cache.EnvARG, Name: "X"}) }},
		{"env removed", func(p *cache.Parts) { p.Env = p.Env[1:] }},
		{"workdir", func(p *cache.Parts) { p.Env[2].Value = "/app" }},
		{"user", func(p *cache.Parts) { p.Env[3].Value = "root" }},
		{"shell", func(p *cache.Parts) { p.Env[4].Value = `["/bin/bash","-c"]` }},
		{"input digest", func(p *cache.Parts) { p.Inputs[0].Digest = hash("b3") }},
		{"input name", func(p *cache.Parts) { p.Inputs[0].Name = "deps2" }},
		{"input kind", func(p *cache.Parts) { p.Inputs[0].Kind = cache.InputImage }},
		{"input added", func(p *cache.Parts) {
			p.Inputs = append(p.Inputs, cache.Input{Kind: cache.InputContext, Digest: hash("c4")})
		}},
		{"input removed", func(p *cache.Parts) { p.Inputs = nil }},
		{"platform", func(p *cache.Parts) { p.Platform = "linux/arm64" }},
		{"platform variant", func(p *cache.Parts) { p.Platform = "linux/amd64/v3" }},
	}
	base := sampleParts().Key()
	seen := map[v1.Hash]string{base: "base"}
	for _, m := range mutations {
		p := sampleParts()
		m.mutate(&p)
		k := p.Key()
		if k == base {
			t.Errorf("%s: Key() unchanged", m.name)
		}
		if other, dup := seen[k]; dup {
			t.Errorf("%s: Key() equals the key of %s", m.name, other)
		}
		seen[k] = m.name
	}
}

func TestKeyIgnores(t *testing.T) {
	t.Parallel()
	base := sampleParts().Key()
	cases := []struct {
		name   string
		mutate func(p *cache.Parts)
	}{
		{"env order", func(p *cache.Parts) { p.Env[0], p.Env[4] = p.Env[4], p.Env[0] }},
		{"input order", func(p *cache.Parts) {
			p.Inputs = []cache.Input{{Kind: cache.InputURL, Name: "u", Digest: hash("d5")}, p.Inputs[0]}
		}},
		{"parent name", func(p *cache.Parts) { p.Parent.Name = "builder" }},
		{"empty version means v1", func(p *cache.Parts) { p.Version = "" }},
	}
	for _, c := range cases {
		p := sampleParts()
		c.mutate(&p)
		want := base
		if c.name == "input order" {
			q := sampleParts()
			q.Inputs = append(q.Inputs, cache.Input{Kind: cache.InputURL, Name: "u", Digest: hash("d5")})
			want = q.Key()
		}
		if got := p.Key(); got != want {
			t.Errorf("%s: Key() = %s, want %s", c.name, got, want)
		}
	}
	// Normalize does not change its receiver's slices.
	p := sampleParts()
	p.Normalize()
	if diff := cmp.Diff(sampleParts(), p); diff != "" {
		t.Errorf("Normalize changed its receiver (-want +got):\n%s", diff)
	}
}

func TestCanonicalStrings(t *testing.T) {
	t.Parallel()
	// Each pair must give different keys: encoding/json would map invalid
	// bytes to U+FFFD and make the first three collide.
	texts := []string{"RUN \xff", "RUN \xfe", "RUN \ufffd", "RUN ÿ", "RUN \u00ff", "RUN \x00", "RUN \"", "RUN \\", "RUN \n", "RUN \\n"}
	keys := map[v1.Hash]string{}
	for _, s := range texts {
		p := sampleParts()
		p.Instruction = s
		k := p.Key()
		if prev, dup := keys[k]; dup && prev != s {
			t.Errorf("Key(%q) == Key(%q)", s, prev)
		}
		keys[k] = s
	}
	if len(keys) != len(texts)-1 { // "RUN ÿ" and "RUN \u00ff" are the same Go string
		t.Errorf("got %d distinct keys for %d texts, want %d", len(keys), len(texts), len(texts)-1)
	}
	p := sampleParts()
	p.Instruction = "a\"b\\c\x01d\xffe<>&é"
	want := `"instruction":"a\"b\\c\u0001d\u00ffe<>&é"`
	if got := string(p.Canonical()); !strings.Contains(got, want) {
		t.Errorf("Canonical() = %s, want it to contain %s", got, want)
	}
}

func TestLinkState(t *testing.T) {
	t.Parallel()
	layer := cache.Parts{Parent: cache.Parent{Kind: cache.ParentNone}, Instruction: "COPY --link a /a", Platform: "linux/amd64"}
	k := layer.Key()
	base1 := cache.ImageParent(hash("e1"), "busybox")
	base2 := cache.ImageParent(hash("e2"), "busybox")
	s1, s2 := cache.LinkState(base1, k), cache.LinkState(base2, k)
	if s1 == s2 {
		t.Errorf("LinkState same for two bases")
	}
	if s1 == k {
		t.Errorf("LinkState(base, k) = k")
	}
	if got := cache.LinkState(base1, k); got != s1 {
		t.Errorf("LinkState not deterministic")
	}
	renamed := cache.ImageParent(hash("e1"), "other-name")
	if got := cache.LinkState(renamed, k); got != s1 {
		t.Errorf("LinkState depends on the parent's name")
	}
	layer2 := layer
	layer2.Instruction = "COPY --link b /b"
	if cache.LinkState(base1, layer2.Key()) == s1 {
		t.Errorf("LinkState same for two layers")
	}
	if cache.Scratch.State() != cache.ScratchState() || base1.State() != hash("e1") {
		t.Errorf("Parent.State wrong")
	}
}
