package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newFsckCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "fsck",
		Short: "Verify every blob and reference in the store",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("fsck: not implemented yet")
		},
	}
}
