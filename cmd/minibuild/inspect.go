package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newInspectCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect IMAGE",
		Short: "Print an image's manifest and config as JSON",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("inspect: not implemented yet")
		},
	}
}
