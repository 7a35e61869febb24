package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"minibuild/oci"
)

func newSaveCmd(a *app) *cobra.Command {
	var output, format string
	cmd := &cobra.Command{
		Use:   "save IMAGE -o FILE [--format docker|oci]",
		Short: "Write an image to a docker or OCI archive",
		Long: `Write IMAGE to FILE: a tarball docker load reads (--format docker, the
default) or an OCI archive, the image's blobs byte for byte (--format oci).
FILE appears only complete; "-o -" writes to standard output.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			f := oci.Format(format)
			if f != oci.FormatDocker && f != oci.FormatOCI {
				return &usageError{fmt.Errorf("--format %q: want docker or oci", format)}
			}
			if output == "" {
				return &usageError{errors.New("save: -o FILE is required (-o - for standard output)")}
			}
			s, err := openRegistryStore(a, nil) // lazy layers come from registries
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, s.Close()) }()
			// An archive holds every blob: bring the layers a lazy pull
			// or an imported cache left in their registry.
			if err := s.FetchImage(cmd.Context(), args[0], oci.FetchOptions{}); err != nil {
				return err
			}
			if output == "-" {
				if fi, err := os.Stdout.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
					return &usageError{errors.New("save: refusing to write an archive to a terminal")}
				}
				w := bufio.NewWriterSize(a.stdout, 1<<20)
				if err := s.Save(cmd.Context(), args[0], w, f); err != nil {
					return err
				}
				return w.Flush()
			}
			return writeAtomic(output, func(w *bufio.Writer) error {
				return s.Save(cmd.Context(), args[0], w, f)
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to FILE (- for standard output)")
	cmd.Flags().StringVar(&format, "format", string(oci.FormatDocker), "archive format: docker or oci")
	return cmd
}

// writeAtomic creates path with what write writes, through a temp file in
// the same directory that is synced and renamed into place: path is either
// complete or untouched.
func writeAtomic(path string, write func(*bufio.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	w := bufio.NewWriterSize(tmp, 1<<20)
	if err := write(w); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
