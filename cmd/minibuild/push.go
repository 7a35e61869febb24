package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"minibuild/oci"
)

func newPushCmd(a *app) *cobra.Command {
	var insecure []string
	cmd := &cobra.Command{
		Use:   "push IMAGE [DEST]",
		Short: "Push an image from the store to a registry",
		Long: `Push IMAGE (a name, digest or short ID in the store) to DEST, a registry
reference such as registry.example.com/team/app:1.0; DEST defaults to
IMAGE's name. Only the blobs the repository lacks are sent: each is checked
first, mounted from another repository of the same registry when the store
knows one that has it, uploaded otherwise. The manifest goes last, byte for
byte, so the registry's digest is the store's.
` + registryHelp,
		Args: rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			dest := "" // IMAGE's own name; Push refuses an ID
			if len(args) == 2 {
				dest = args[1]
			}
			if dest != "" {
				if _, err := oci.ParseName(dest); err != nil {
					return &usageError{err}
				}
			}
			s, err := openRegistryStore(a, insecure)
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, s.Close()) }()
			d, err := s.Push(cmd.Context(), args[0], dest, oci.PushOptions{Progress: blobPrinter(a.stdout, "pushing")})
			if err != nil {
				return err
			}
			n, _ := oci.ParseName(args[len(args)-1]) // valid: Push took it as a name
			fmt.Fprintf(a.stdout, "%s: digest: %s size: %d\n", n, d.Digest, d.Size)
			return nil
		},
	}
	addInsecureFlag(cmd, &insecure)
	return cmd
}

// rangeArgs is cobra.RangeArgs as a usage error (exit 2).
func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.RangeArgs(lo, hi)(cmd, args); err != nil {
			return &usageError{err}
		}
		return nil
	}
}
