package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newTagCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE TARGET",
		Short: "Give an image in the store another name",
		Long: `Point the name TARGET (such as registry.example.com/app:1.0) at the image
SOURCE names (a name, digest or short ID), replacing what TARGET named. The
store only: nothing is sent to a registry until push.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			s, err := openStore(a)
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, s.Close()) }()
			d, err := s.Resolve(args[0])
			if err != nil {
				return err
			}
			return s.Tag(cmd.Context(), args[1], d)
		},
	}
}
