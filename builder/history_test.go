package builder

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestHistory checks created_by and empty_layer against what BuildKit
// writes (dockerfile2llb's commitToHistory callers; expectations from
// dockerfile_history_test.go testExportedHistory and
// testExportedHistoryFlattenArgs where they overlap).
func TestHistory(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		dockerfile string
		req        Request
		want       []string // created_by, "(empty)" suffix for empty_layer
	}{
		{
			name: "testExportedHistory",
			dockerfile: "FROM scratch AS base\nENV foo=bar\nCOPY foo /foo2\nFROM scratch\nLABEL lbl=val\n" +
				"COPY --from=base foo2 foo3\nWORKDIR /\nRUN echo bar > foo4\nRUN [\"ls\"]\nEXPOSE 2375 5000 1234/udp\n",
			want: []string{
				"LABEL lbl=val (empty)",
				"COPY foo2 foo3 # buildkit",
				"WORKDIR / (empty)",
				"RUN /bin/sh -c echo bar > foo4 # buildkit",
				"RUN ls # buildkit",
				"EXPOSE [1234/udp 2375/tcp 5000/tcp] (empty)",
			},
		},
		{
			name:       "testExportedHistoryFlattenArgs",
			dockerfile: "FROM scratch\nARG foo=bar\nARG bar=123\nARG foo=bar2\nRUN ls /etc/\n",
			want: []string{
				"ARG foo=bar (empty)",
				"ARG bar=123 (empty)",
				"ARG foo=bar2 (empty)",
				"RUN |2 foo=bar2 bar=123 /bin/sh -c ls /etc/ # buildkit",
			},
		},
		{
			name:       "metadata instructions",
			dockerfile: "FROM scratch\nENV A=1 B=\"two words\"\nUSER app\nVOLUME /data /cache\nSTOPSIGNAL SIGTERM\nSHELL [\"/bin/bash\", \"-c\"]\nCMD echo hi\nENTRYPOINT [\"/app\"]\nMAINTAINER Jane <j@x>\n",
			want: []string{
				"ENV A=1 B=two words (empty)",
				"USER app (empty)",
				"VOLUME [/data /cache] (empty)",
				"STOPSIGNAL SIGTERM (empty)",
				"SHELL [/bin/bash -c] (empty)",
				`CMD ["/bin/bash" "-c" "echo hi"] (empty)`,
				`ENTRYPOINT ["/app"] (empty)`,
				"MAINTAINER Jane <j@x> (empty)",
			},
		},
		{
			name:       "healthcheck",
			dockerfile: "FROM scratch\nHEALTHCHECK --interval=5s --timeout=3s --start-period=1m --start-interval=2s --retries=4 CMD curl -f http://x/\nHEALTHCHECK NONE\n",
			want: []string{
				"HEALTHCHECK {Test:[CMD-SHELL curl -f http://x/] Interval:5s Timeout:3s StartPeriod:1m0s StartInterval:2s Retries:4} (empty)",
				"HEALTHCHECK {Test:[NONE] Interval:0s Timeout:0s StartPeriod:0s StartInterval:0s Retries:0} (empty)",
			},
		},
		{
			name:       "copy and add flags",
			dockerfile: "FROM scratch\nCOPY --link --chown=1:2 --chmod=755 --parents a b /d/\nADD --checksum=sha256:" + strings.Repeat("a", 64) + " https://example.com/x.tgz /\nCOPY <<EOF <<EOT /h/\nx\nEOF\ny\nEOT\n",
			want: []string{
				"COPY --parents --chown=1:2 --chmod=755 a b /d/ # buildkit",
				"ADD https://example.com/x.tgz / # buildkit",
				"COPY <<EOF <<EOT /h/ # buildkit",
			},
		},
		{
			name:       "workdir",
			dockerfile: "FROM scratch\nWORKDIR /a\nWORKDIR b/../c\nWORKDIR /\nWORKDIR /x/\n",
			want:       []string{"WORKDIR /a", "WORKDIR /a/c", "WORKDIR / (empty)", "WORKDIR /x/"},
		},
		{
			name:       "run heredoc",
			dockerfile: "FROM scratch\nRUN <<EOF\necho one\necho two\nEOF\nRUN <<EOF\n#!/bin/sh\necho script\nEOF\n",
			want: []string{
				"RUN /bin/sh -c echo one\necho two\n # buildkit",
				"RUN /bin/sh -c /.minibuild-heredocs/EOF # buildkit",
			},
		},
		{
			name:       "expanded copy sources and destination",
			dockerfile: "FROM scratch\nARG D=/dst\nENV S=src\nCOPY $S/* ${D}/\n",
			want:       []string{"ARG D=/dst (empty)", "ENV S=src (empty)", "COPY src/* /dst/ # buildkit"},
		},
		{
			name:       "proxy args stay out of history",
			dockerfile: "FROM scratch\nRUN make\nARG HTTPS_PROXY\nRUN make\n",
			req:        Request{BuildArgs: map[string]string{"HTTP_PROXY": "http://u:p@proxy", "HTTPS_PROXY": "http://proxy2"}},
			want: []string{
				"RUN /bin/sh -c make # buildkit",
				"ARG HTTPS_PROXY=http://proxy2 (empty)",
				"RUN |1 HTTPS_PROXY=http://proxy2 /bin/sh -c make # buildkit",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := mustParse(t, tc.dockerfile, tc.req, nil)
			var got []string
			for _, s := range p.Target.Steps {
				line := s.History.CreatedBy
				if s.History.EmptyLayer {
					line += " (empty)"
				}
				if s.History.Comment != "buildkit.dockerfile.v0" {
					t.Errorf("step %q: comment = %q", s.Original, s.History.Comment)
				}
				got = append(got, line)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("history (-want +got):\n%s", diff)
			}
			if n := len(p.Target.Config.History); n != len(p.Target.Steps) {
				t.Errorf("config has %d history entries, want %d (one per step)", n, len(p.Target.Steps))
			}
		})
	}
}

func TestEpoch(t *testing.T) {
	t.Parallel()
	p := mustParse(t, "FROM scratch\nENV A=b\n", Request{}, nil)
	if got, want := p.Target.Config.Created.Time, time.Unix(DefaultEpoch, 0).UTC(); !got.Equal(want) || got.Format(time.RFC3339) != "1980-01-02T00:00:00Z" {
		t.Errorf("created = %v, want %v", got, want)
	}
	p = mustParse(t, "FROM scratch\nENV A=b\n", Request{BuildArgs: map[string]string{"SOURCE_DATE_EPOCH": "1700000000"}}, nil)
	want := time.Unix(1700000000, 0)
	if got := p.Target.Config.Created.Time; !got.Equal(want) {
		t.Errorf("created = %v, want %v", got, want)
	}
	if got := p.Target.Steps[0].History.Created.Time; !got.Equal(want) {
		t.Errorf("history created = %v, want %v", got, want)
	}
	if _, err := parseDockerfile(t, "FROM scratch\n", Request{BuildArgs: map[string]string{"SOURCE_DATE_EPOCH": "soon"}}, nil); err == nil {
		t.Error("Parse with SOURCE_DATE_EPOCH=soon succeeded, want error")
	}
}

// TestConfig checks the image config a stage ends with.
func TestConfig(t *testing.T) {
	t.Parallel()
	base := testImage("docker.io/library/base:latest", v1.Config{
		Env:        []string{"PATH=/base/bin", "LANG=C"},
		Cmd:        []string{"base-cmd"},
		WorkingDir: "/srv",
		Labels:     map[string]string{"from": "base"},
		OnBuild:    []string{"LABEL triggered=yes"},
	})
	images := fakeImages{"base": base}
	tests := []struct {
		name       string
		dockerfile string
		check      func(t *testing.T, c *v1.ConfigFile)
	}{
		{"scratch defaults", "FROM scratch\n", func(t *testing.T, c *v1.ConfigFile) {
			want := v1.Config{Env: []string{"PATH=" + defaultPath}, WorkingDir: "/"}
			if diff := cmp.Diff(want, c.Config); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			if c.OS != "linux" || c.Architecture != "amd64" || c.RootFS.Type != "layers" {
				t.Errorf("platform = %s/%s rootfs %q", c.OS, c.Architecture, c.RootFS.Type)
			}
		}},
		{"entrypoint resets inherited cmd", "FROM base\nENTRYPOINT [\"/e\"]\n", func(t *testing.T, c *v1.ConfigFile) {
			if c.Config.Cmd != nil {
				t.Errorf("Cmd = %q, want nil (ENTRYPOINT resets a base CMD)", c.Config.Cmd)
			}
		}},
		{"entrypoint keeps cmd of the same stage", "FROM base\nCMD [\"x\"]\nENTRYPOINT [\"/e\"]\n", func(t *testing.T, c *v1.ConfigFile) {
			if diff := cmp.Diff([]string{"x"}, c.Config.Cmd); diff != "" {
				t.Errorf("Cmd (-want +got):\n%s", diff)
			}
		}},
		{"shell form uses SHELL", "FROM scratch\nSHELL [\"/bin/bash\", \"-euc\"]\nENTRYPOINT exec app\n", func(t *testing.T, c *v1.ConfigFile) {
			if diff := cmp.Diff([]string{"/bin/bash", "-euc", "exec app"}, c.Config.Entrypoint); diff != "" {
				t.Errorf("Entrypoint (-want +got):\n%s", diff)
			}
		}},
		{"base image inherited and onbuild consumed", "FROM base\nENV PATH=$PATH:/x\nWORKDIR rel\n", func(t *testing.T, c *v1.ConfigFile) {
			if diff := cmp.Diff([]string{"PATH=/base/bin:/x", "LANG=C"}, c.Config.Env); diff != "" {
				t.Errorf("Env (-want +got):\n%s", diff)
			}
			if c.Config.WorkingDir != "/srv/rel" {
				t.Errorf("WorkingDir = %q, want /srv/rel", c.Config.WorkingDir)
			}
			if c.Config.Labels["triggered"] != "yes" || c.Config.OnBuild != nil {
				t.Errorf("labels %v onbuild %q: the base trigger must run and not carry over", c.Config.Labels, c.Config.OnBuild)
			}
			if len(c.RootFS.DiffIDs) != 1 || len(c.History) != 4 {
				t.Errorf("diff_ids %d history %d, want the base's layer and history kept", len(c.RootFS.DiffIDs), len(c.History))
			}
		}},
		{"own onbuild recorded", "FROM scratch\nONBUILD RUN make\nONBUILD COPY . /src\n", func(t *testing.T, c *v1.ConfigFile) {
			if diff := cmp.Diff([]string{"RUN make", "COPY . /src"}, c.Config.OnBuild); diff != "" {
				t.Errorf("OnBuild (-want +got):\n%s", diff)
			}
		}},
		{"labels expose volumes healthcheck", "FROM scratch\nLABEL a=1 \"b c\"=2\nEXPOSE 80 53/udp\nVOLUME [\"/v\"]\nHEALTHCHECK --interval=1s --retries=2 CMD [\"/ok\"]\nSTOPSIGNAL 9\n", func(t *testing.T, c *v1.ConfigFile) {
			want := v1.Config{
				Env:          []string{"PATH=" + defaultPath},
				WorkingDir:   "/",
				Labels:       map[string]string{"a": "1", "b c": "2"},
				ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}},
				Volumes:      map[string]struct{}{"/v": {}},
				Healthcheck:  &v1.HealthConfig{Test: []string{"CMD", "/ok"}, Interval: time.Second, Retries: 2},
				StopSignal:   "9",
			}
			if diff := cmp.Diff(want, c.Config); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		}},
		{"maintainer sets author", "FROM scratch\nMAINTAINER Jane\n", func(t *testing.T, c *v1.ConfigFile) {
			if c.Author != "Jane" {
				t.Errorf("Author = %q, want Jane", c.Author)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := mustParse(t, tc.dockerfile, Request{}, images)
			tc.check(t, p.Target.Config)
		})
	}
	// The base image's config is a value: planning must not change it.
	if base.Config.Config.OnBuild == nil || len(base.Config.History) != 1 || base.Config.Config.Env[0] != "PATH=/base/bin" {
		t.Errorf("base config changed by planning: %+v", base.Config.Config)
	}
}

func TestBaseAnnotationsAndLabels(t *testing.T) {
	t.Parallel()
	images := fakeImages{"base": testImage("docker.io/library/base:latest", v1.Config{})}
	p := mustParse(t, "FROM base AS a\nFROM a\n", Request{Labels: map[string]string{"org.example": "x"}, Platform: "linux/arm64"}, images)
	if p.Target.BaseName != "docker.io/library/base:latest" || p.Target.BaseDigest.Hex != strings.Repeat("a", 64) {
		t.Errorf("base = %q %v, want the base image's name and digest through the stage chain", p.Target.BaseName, p.Target.BaseDigest)
	}
	if p.Target.Config.Config.Labels["org.example"] != "x" {
		t.Errorf("labels = %v, want --label applied to the target", p.Target.Config.Config.Labels)
	}
	if p.Target.Config.Architecture != "arm64" {
		t.Errorf("architecture = %q, want the requested platform", p.Target.Config.Architecture)
	}
	if p.Stages[0].Config.Config.Labels["org.example"] != "" {
		t.Error("--label leaked into a non-target stage")
	}
}
