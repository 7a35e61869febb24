package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"minibuild/builder"
)

const pruneHelp = `Remove build cache: step records, then every blob, snapshot and input
listing that neither a tagged image nor a remaining record keeps. Tagged
images are never removed (see rmi).

  minibuild prune                      only what nothing can use any more
  minibuild prune --keep-storage 10GB  keep the most recently used records
                                       whose layers fit in 10 GB
  minibuild prune --all                every cache record

SIZE is a number of bytes with an optional unit: kB, MB, GB, TB (powers of
1000) or KiB, MiB, GiB, TiB (powers of 1024). Safe while builds run.`

func newPruneCmd(a *app) *cobra.Command {
	var all bool
	var keep string
	cmd := &cobra.Command{
		Use:   "prune [--all] [--keep-storage SIZE]",
		Short: "Remove build cache that no tagged image needs",
		Long:  pruneHelp,
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			opts := builder.PruneOptions{All: all}
			if keep != "" {
				if opts.KeepStorage, err = parseSize(keep); err != nil {
					return &usageError{fmt.Errorf("--keep-storage: %w", err)}
				}
				if all {
					return &usageError{errors.New("--all and --keep-storage: choose one")}
				}
			}
			e, err := openEngine(a, nil)
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, e.close()) }()
			rep, err := e.Prune(cmd.Context(), opts)
			if err != nil {
				return err
			}
			printPruneReport(a, rep)
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "remove every cache record (tagged images stay)")
	cmd.Flags().StringVar(&keep, "keep-storage", "", "keep the most recently used cache up to SIZE (e.g. 10GB)")
	return cmd
}

func printPruneReport(a *app, r builder.PruneReport) {
	if r == (builder.PruneReport{}) {
		fmt.Fprintln(a.stdout, "Nothing to remove.")
		return
	}
	fmt.Fprintf(a.stdout, "Deleted %d cache records, %d input listings, %d blobs (%s), %d snapshots\n",
		r.Records, r.Listings, r.Blobs, humanSize(r.Bytes), r.Snapshots)
	fmt.Fprintf(a.stdout, "Total reclaimed space: %s\n", humanSize(r.Bytes))
}
