package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"minibuild/builder"
	"minibuild/exec"
)

const runHelp = `Run COMMAND (default: the image's ENTRYPOINT and CMD) in a container of
IMAGE, a name or digest in the store, in the same sandbox as a build's RUN
steps: the image's layers as a read-only base under a throwaway writable
layer, new mount, PID, UTS and IPC namespaces, the image's ENV, USER and
WORKDIR. Standard input is /dev/null. The container is always removed when
the command ends (--rm is implied), and minibuild exits with the command's
exit code.

Flags after IMAGE belong to the command.`

// runOptions are the flags of `minibuild run`.
type runOptions struct {
	env        []string
	network    string
	user       string
	workdir    string
	entrypoint string
	rm         bool
}

func newRunCmd(a *app) *cobra.Command {
	var o *runOptions
	cmd := &cobra.Command{
		Use:   "run [flags] IMAGE [COMMAND [ARG...]]",
		Short: "Run a command in a container of an image, then remove it",
		Long:  runHelp,
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := o.request(cmd.Flags(), args, os.LookupEnv)
			if err != nil {
				return err
			}
			req.Stdout, req.Stderr = a.stdout, a.stderr
			return runContainer(cmd, a, req)
		},
	}
	o = bindRunFlags(cmd.Flags())
	return cmd
}

// bindRunFlags adds the run flags to fs and returns where they land.
func bindRunFlags(fs *pflag.FlagSet) *runOptions {
	o := &runOptions{}
	fs.SetInterspersed(false)
	fs.StringArrayVarP(&o.env, "env", "e", nil, "set KEY=VALUE in the environment (KEY alone: minibuild's own value; repeatable)")
	fs.StringVar(&o.network, "network", "host", "network: host or none")
	fs.StringVarP(&o.user, "user", "u", "", "run as USER[:GROUP] or UID[:GID] (default: the image's USER)")
	fs.StringVarP(&o.workdir, "workdir", "w", "", "working directory (default: the image's WORKDIR)")
	fs.StringVar(&o.entrypoint, "entrypoint", "", `replace the image's ENTRYPOINT ("" clears it; CMD is dropped too, as in docker run)`)
	fs.BoolVar(&o.rm, "rm", true, "remove the container when it ends (always)")
	fs.MarkHidden("rm")
	return o
}

// request turns the flags and arguments into a [builder.RunRequest].
func (o *runOptions) request(fs *pflag.FlagSet, args []string, env environ) (builder.RunRequest, error) {
	req := builder.RunRequest{Image: args[0], User: o.user, Workdir: o.workdir}
	if len(args) > 1 {
		req.Args = args[1:]
	}
	if fs.Changed("entrypoint") {
		req.Entrypoint = []string{}
		if o.entrypoint != "" {
			req.Entrypoint = []string{o.entrypoint}
		}
	}
	switch o.network {
	case "host", "default", "":
		req.Network = "host"
	case "none":
		req.Network = "none"
	default:
		return req, &usageError{fmt.Errorf("--network %q: want host or none", o.network)}
	}
	for _, kv := range o.env {
		k, v, ok := strings.Cut(kv, "=")
		if k == "" {
			return req, &usageError{fmt.Errorf("--env %q: want KEY=VALUE or KEY", kv)}
		}
		if !ok {
			if v, ok = env(k); !ok {
				continue // like docker run: an unset variable is left out
			}
		}
		req.Env = append(req.Env, k+"="+v)
	}
	return req, nil
}

// runContainer runs req; the command's exit code becomes minibuild's.
func runContainer(cmd *cobra.Command, a *app, req builder.RunRequest) (err error) {
	e, err := openEngine(a, nil)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, e.close()) }()
	err = e.Run(cmd.Context(), req)
	if ee, ok := errors.AsType[*exec.ExitError](err); ok && cmd.Context().Err() == nil {
		return &exitError{code: ee.Code}
	}
	return err
}
