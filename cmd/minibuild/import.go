package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"minibuild/oci"
)

func newImportCmd(a *app) *cobra.Command {
	var tag string
	cmd := &cobra.Command{
		Use:   "import PATH [-t NAME]",
		Short: "Import an OCI layout, OCI archive or docker save tarball",
		Long: `Import the images of PATH into the store: an OCI image layout directory,
an OCI archive (a tar of a layout), or a docker save tarball (plain or gzip).
Blobs are copied byte for byte, so images keep their digests. Images are
tagged with the names the input carries; -t names the single image of PATH.
Nothing is added unless everything verifies.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			s, err := openStore(a)
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, s.Close()) }()
			infos, err := s.Import(cmd.Context(), args[0], oci.ImportOptions{Tag: tag})
			if err != nil {
				return err
			}
			for _, in := range infos {
				if in.Name != "" {
					fmt.Fprintf(a.stdout, "Loaded image: %s (%s)\n", in.Name, in.Digest)
				} else {
					fmt.Fprintf(a.stdout, "Loaded image ID: %s\n", in.Digest)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&tag, "tag", "t", "", "name the imported image (PATH must hold exactly one)")
	return cmd
}

// openStore opens the store at --root, reporting lock waits on stderr.
func openStore(a *app) (*oci.Store, error) {
	return oci.Open(a.root, oci.WithLogger(slog.New(&stderrHandler{w: a.stderr})))
}

// exactArgs is cobra.ExactArgs as a usage error (exit 2).
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return &usageError{err}
		}
		return nil
	}
}

// minArgs is cobra.MinimumNArgs as a usage error (exit 2).
func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.MinimumNArgs(n)(cmd, args); err != nil {
			return &usageError{err}
		}
		return nil
	}
}

// stderrHandler prints library log records at Info and above as
// "minibuild: message key=value".
type stderrHandler struct {
	w     io.Writer
	attrs []slog.Attr
}

func (h *stderrHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *stderrHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString("minibuild: ")
	b.WriteString(r.Message)
	write := func(at slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", at.Key, at.Value)
		return true
	}
	for _, at := range h.attrs {
		write(at)
	}
	r.Attrs(write)
	b.WriteByte('\n')
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *stderrHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &stderrHandler{w: h.w, attrs: append(append([]slog.Attr{}, h.attrs...), attrs...)}
}

func (h *stderrHandler) WithGroup(string) slog.Handler { return h }
