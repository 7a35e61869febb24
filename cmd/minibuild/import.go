package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newImportCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "import PATH",
		Short: "Import an OCI layout, OCI archive or docker save tarball",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("import: not implemented yet")
		},
	}
}
