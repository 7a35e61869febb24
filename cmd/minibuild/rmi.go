package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

func newRmiCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "rmi IMAGE...",
		Short: "Remove images and the blobs no longer used",
		Long: `Remove each IMAGE: a name removes that tag, a digest or short ID removes
every tag of the image. Then delete the blobs and snapshots nothing refers
to any more (this waits for other minibuild commands on the store to end).`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			s, err := openStore(a)
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, s.Close()) }()
			failed := 0
			for _, ref := range args {
				names, err := s.RemoveImage(cmd.Context(), ref)
				if err != nil {
					fmt.Fprintf(a.stderr, "minibuild: %v\n", err)
					failed++
					continue
				}
				for _, n := range names {
					if n == "" {
						n = "<none>"
					}
					fmt.Fprintf(a.stdout, "Untagged: %s\n", n)
				}
			}
			if failed < len(args) {
				res, err := s.GC(cmd.Context(), nil)
				for _, h := range res.Blobs {
					fmt.Fprintf(a.stdout, "Deleted: %s\n", h)
				}
				if err != nil {
					return err
				}
			}
			if failed > 0 {
				return &exitError{code: exitFailure, err: fmt.Errorf("rmi: %d of %d images not removed", failed, len(args))}
			}
			return nil
		},
	}
}
