package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newImagesCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "images",
		Short: "List images in the store",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("images: not implemented yet")
		},
	}
}
