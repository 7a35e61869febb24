package main

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"

	"minibuild/builder"
)

func TestRunRequest(t *testing.T) {
	t.Parallel()
	env := func(k string) (string, bool) {
		v, ok := map[string]string{"HOME": "/root"}[k]
		return v, ok
	}
	tests := []struct {
		args []string
		want builder.RunRequest
	}{
		{[]string{"img"}, builder.RunRequest{Image: "img", Network: "host"}},
		{[]string{"-e", "A=1", "-e", "HOME", "-e", "UNSET", "-u", "nobody", "-w", "/tmp", "--network", "none", "img", "sh", "-c", "x"},
			builder.RunRequest{Image: "img", Args: []string{"sh", "-c", "x"}, Env: []string{"A=1", "HOME=/root"}, User: "nobody", Workdir: "/tmp", Network: "none"}},
		{[]string{"--entrypoint", "/bin/echo", "img", "-n", "hi"}, builder.RunRequest{Image: "img", Entrypoint: []string{"/bin/echo"}, Args: []string{"-n", "hi"}, Network: "host"}},
		{[]string{"--entrypoint=", "img"}, builder.RunRequest{Image: "img", Entrypoint: []string{}, Network: "host"}},
		{[]string{"--rm", "img"}, builder.RunRequest{Image: "img", Network: "host"}},
	}
	for _, tc := range tests {
		fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
		o := bindRunFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatalf("parse %q: %v", tc.args, err)
		}
		got, err := o.request(fs, fs.Args(), env)
		if err != nil {
			t.Fatalf("request %q: %v", tc.args, err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("run %q (-want +got):\n%s", tc.args, diff)
		}
	}
	o := runOptions{network: "bridge"}
	if _, err := o.request(pflag.NewFlagSet("run", pflag.ContinueOnError), []string{"img"}, env); !errors.As(err, new(*usageError)) {
		t.Errorf("--network bridge: %v, want a usage error", err)
	}
}
