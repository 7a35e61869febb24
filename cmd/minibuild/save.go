package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newSaveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "save IMAGE -o FILE",
		Short: "Write an image to an OCI or docker archive",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("save: not implemented yet")
		},
	}
}
