package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

// inspectOutput is one element of `minibuild inspect`'s JSON array.
type inspectOutput struct {
	Names     []string        `json:"Names"`
	Digest    string          `json:"Digest"`
	MediaType string          `json:"MediaType"`
	Size      int64           `json:"Size"`
	Manifest  json.RawMessage `json:"Manifest"`
	Config    json.RawMessage `json:"Config,omitempty"`
}

func newInspectCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect IMAGE...",
		Short: "Print images' manifests and configs as JSON",
		Long: `Print a JSON array with, for each IMAGE (a name, a digest or a short ID),
its tags, its manifest (or index) and its config, exactly as stored.`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			s, err := openStore(a)
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, s.Close()) }()
			out := make([]inspectOutput, 0, len(args))
			for _, ref := range args {
				in, err := s.Inspect(ref)
				if err != nil {
					return err
				}
				out = append(out, inspectOutput{
					Names:     in.Names,
					Digest:    in.Descriptor.Digest.String(),
					MediaType: string(in.Descriptor.MediaType),
					Size:      in.Descriptor.Size,
					Manifest:  in.Manifest,
					Config:    in.Config,
				})
			}
			b, err := json.MarshalIndent(out, "", "    ")
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "%s\n", b)
			return err
		},
	}
}
