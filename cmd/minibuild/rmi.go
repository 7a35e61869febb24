package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newRmiCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "rmi IMAGE...",
		Short: "Remove image tags",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("rmi: not implemented yet")
		},
	}
}
