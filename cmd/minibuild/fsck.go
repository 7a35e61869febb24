package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

func newFsckCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "fsck",
		Short: "Verify every blob and reference in the store",
		Long: `Re-hash every blob, parse every manifest, index and config, check every
reference and the snapshot directories. Prints one line per problem and
exits non-zero if there is any.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			s, err := openStore(a)
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, s.Close()) }()
			r, err := s.Fsck(cmd.Context())
			if err != nil {
				return err
			}
			for _, p := range r.Problems {
				fmt.Fprintln(a.stdout, p)
			}
			fmt.Fprintf(a.stdout, "checked %d blobs (%s), %d images, %d snapshots: %d problems\n",
				r.Blobs, humanSize(r.BlobBytes), r.Images, r.Snapshots, len(r.Problems))
			if n := len(r.Unreferenced); n > 0 {
				fmt.Fprintf(a.stdout, "%d unreferenced blobs (not a problem; the next rmi deletes them)\n", n)
			}
			if !r.OK() {
				return &exitError{code: exitFailure, err: fmt.Errorf("fsck: %d problems in %s", len(r.Problems), s.Root())}
			}
			return nil
		},
	}
}
