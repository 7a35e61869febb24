package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// addBuildFlags makes cmd a build command: the root command builds too, so
// `minibuild -f Dockerfile .` works like `minibuild build -f Dockerfile .`.
func addBuildFlags(cmd *cobra.Command, a *app) {
	cmd.Args = cobra.MaximumNArgs(1)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return errors.New("build: not implemented yet")
	}
}

func newBuildCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "build [flags] [-f Dockerfile] CONTEXT",
		Short: "Build an image from a Dockerfile",
	}
	addBuildFlags(cmd, a)
	return cmd
}
