package main

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"

	"minibuild/builder"
)

// parseBuild parses build flags args and returns the request they make.
func parseBuild(t *testing.T, env map[string]string, args ...string) (builder.Request, error) {
	t.Helper()
	fs := pflag.NewFlagSet("build", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o := bindBuildFlags(fs)
	if err := fs.Parse(args); err != nil {
		return builder.Request{}, &usageError{err}
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	req, cleanup, err := o.request(fs.Arg(0), strings.NewReader("FROM scratch\n"), lookup)
	t.Cleanup(cleanup)
	return req, err
}

func TestBuildRequest(t *testing.T) {
	t.Parallel()
	env := map[string]string{"FROMENV": "e1", "SOURCE_DATE_EPOCH": "1700000000"}
	tests := []struct {
		name string
		args []string
		want builder.Request
	}{
		{"defaults", []string{"."}, builder.Request{
			Context: ".", Pull: builder.PullMissing, Network: "host", Compression: "gzip",
			BuildArgs: map[string]string{"SOURCE_DATE_EPOCH": "1700000000"},
		}},
		{"everything", []string{
			"-f", "df", "-t", "a", "--tag", "b:1", "--target", "final",
			"--build-arg", "A=1", "--build-arg", "FROMENV", "--build-arg", "UNSET", "--build-arg", "E=",
			"--build-context", "src=../src", "--platform", "linux/arm64/v8", "--label", "k=v", "--label", "bare",
			"--no-cache", "--no-cache-filter", "a,b", "--no-cache-filter", "c", "--pull", "--network", "none", "--jobs", "3", "--compression", "zstd",
			"-o", "type=oci,dest=x.tar", "-o", "out", "--cache-from", "reg/cache", "--cache-to", "type=local,dest=cdir,mode=max",
			"--cache-to", "type=registry,ref=reg/cache,ignore-error=true", "ctx",
		}, builder.Request{
			Dockerfile: "df", Context: "ctx", Target: "final", Tags: []string{"a", "b:1"},
			BuildArgs:     map[string]string{"A": "1", "FROMENV": "e1", "E": "", "SOURCE_DATE_EPOCH": "1700000000"},
			BuildContexts: map[string]string{"src": "../src"}, Platform: "linux/arm64/v8",
			Labels: map[string]string{"k": "v", "bare": ""}, NoCache: true, NoCacheFilter: []string{"a", "b", "c"},
			Pull: builder.PullAlways, Network: "none", Jobs: 3, Compression: "zstd",
			Outputs:   []builder.Output{{Type: "oci", Dest: "x.tar"}, {Type: "local", Dest: "out"}},
			CacheFrom: []builder.CacheSpec{{Type: "registry", Ref: "reg/cache"}},
			CacheTo:   []builder.CacheSpec{{Type: "local", Dir: "cdir", Mode: "max"}, {Type: "registry", Ref: "reg/cache", Mode: "min", IgnoreError: true}},
		}},
		{"epoch build arg wins over the environment", []string{"--build-arg", "SOURCE_DATE_EPOCH=5", "--pull=never", "."}, builder.Request{
			Context: ".", Pull: builder.PullNever, Network: "host", Compression: "gzip", BuildArgs: map[string]string{"SOURCE_DATE_EPOCH": "5"},
		}},
		{"registry output pushes", []string{"-t", "r.example/x", "-o", "type=registry", "--pull=false", "."}, builder.Request{
			Context: ".", Pull: builder.PullMissing, Network: "host", Compression: "gzip", Tags: []string{"r.example/x"}, Push: true,
			Outputs:   []builder.Output{{Type: "registry"}},
			BuildArgs: map[string]string{"SOURCE_DATE_EPOCH": "1700000000"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseBuild(t, env, tc.args...)
			if err != nil {
				t.Fatalf("parse %q: %v", tc.args, err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b builder.ProgressFunc) bool { return true })); diff != "" {
				t.Errorf("request for %q (-want +got):\n%s", tc.args, diff)
			}
		})
	}
}

func TestBuildRequestStdinDockerfile(t *testing.T) {
	t.Parallel()
	req, err := parseBuild(t, nil, "-f", "-", ".")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(req.Dockerfile)
	if err != nil || string(b) != "FROM scratch\n" {
		t.Errorf("Dockerfile from stdin at %s = %q, %v; want the input", req.Dockerfile, b, err)
	}
}

func TestBuildRequestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := [][]string{
		{"--pull=sometimes", "."},
		{"--network", "bridge", "."},
		{"--jobs", "-1", "."},
		{"--jobs", "x", "."},
		{"--platform", "amd64", "."},
		{"--platform", "linux//x", "."},
		{"--build-arg", "=v", "."},
		{"--build-arg", "SOURCE_DATE_EPOCH=yesterday", "."},
		{"--build-context", "noequals", "."},
		{"--build-context", "x=", "."},
		{"--label", "=v", "."},
		{"-o", "type=tar,dest=x", "."},
		{"-o", "dest=x", "."},
		{"-o", "type=oci", "."},
		{"-o", "type=local,dest=-", "."},
		{"-o", "type=oci,dest=x,bogus=1", "."},
		{"-o", "-", "."},
		{"-o", "type=registry", "."}, // no name to push to
		{"--push", "."},
		{"--cache-from", "type=gha", "."},
		{"--cache-from", "type=registry", "."},
		{"--cache-from", "type=registry,ref=x,mode=max", "."},
		{"--cache-to", "type=local,src=x", "."},
		{"--cache-to", "type=registry,ref=x,mode=all", "."},
		{"--cache-to", `type=registry,ref="x`, "."},
		{"--cache-to", "type=registry,ref=x,ignore-error=maybe", "."},
		{"--compression", "lz4", "."},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			_, err := parseBuild(t, nil, args...)
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Errorf("parse %q = %v, want a usage error", args, err)
			}
		})
	}
}

func TestParseOutput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want builder.Output
	}{
		{"out", builder.Output{Type: "local", Dest: "out"}},
		{"type=local,dest=d", builder.Output{Type: "local", Dest: "d"}},
		{"type=docker,dest=-", builder.Output{Type: "docker", Dest: "-"}},
		{`type=oci,"dest=a,b.tar"`, builder.Output{Type: "oci", Dest: "a,b.tar"}},
		{"TYPE=oci, dest=x", builder.Output{Type: "oci", Dest: "x"}},
	}
	for _, tc := range tests {
		got, err := parseOutput(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseOutput(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestToStdout(t *testing.T) {
	t.Parallel()
	var w strings.Builder
	outs := []builder.Output{{Type: "oci", Dest: "-"}, {Type: "local", Dest: "d"}}
	if found, err := toStdout(outs, &w); !found || err != nil || outs[0].Writer != &w || outs[1].Writer != nil {
		t.Errorf("toStdout = %v, %v; outputs %+v", found, err, outs)
	}
	if _, err := toStdout([]builder.Output{{Type: "oci", Dest: "-"}, {Type: "docker", Dest: "-"}}, &w); err == nil {
		t.Errorf("two outputs to stdout: no error")
	}
}
