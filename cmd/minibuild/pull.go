package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"minibuild/oci"
)

// insecureRegistriesEnv lists registries ("host[:port]", comma-separated)
// that may be reached over plain HTTP or unverified HTTPS, for every
// command; --insecure-registry adds to it.
const insecureRegistriesEnv = "MINIBUILD_INSECURE_REGISTRIES"

const registryHelp = `
Credentials come from the Docker config ($DOCKER_CONFIG/config.json, else
~/.docker/config.json, with its credential helpers); certificates are
checked against the system's CAs (SSL_CERT_FILE and SSL_CERT_DIR add
more). A registry named by --insecure-registry or in
MINIBUILD_INSECURE_REGISTRIES (comma-separated host[:port]) may answer over
plain HTTP or HTTPS with any certificate. Transient failures (5xx, resets)
are retried.`

func newPullCmd(a *app) *cobra.Command {
	var platform string
	var insecure []string
	cmd := &cobra.Command{
		Use:   "pull [--platform os/arch[/variant]] NAME[:TAG|@DIGEST]",
		Short: "Pull an image from a registry into the store",
		Long: `Pull NAME from its registry into the store and tag it (a digest reference
tags nothing). "busybox" means docker.io/library/busybox:latest. A
multi-platform image resolves to the host's platform, or --platform's.
Blobs the store has are not downloaded again; the others are verified
before they are stored, and the tag moves only once everything is there.
` + registryHelp,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			opts := oci.PullOptions{Log: slog.New(&stderrHandler{w: a.stderr})}
			if platform != "" {
				if opts.Platform, err = oci.ParsePlatform(platform); err != nil {
					return &usageError{err}
				}
			}
			n, err := oci.ParseName(args[0])
			if err != nil {
				return &usageError{err}
			}
			s, err := openRegistryStore(a, insecure)
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, s.Close()) }()
			opts.Progress = blobPrinter(a.stdout, "pulling")
			d, err := s.Pull(cmd.Context(), n, opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s: digest: %s size: %d\n", n, d.Digest, d.Size)
			return nil
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "pull this platform of a multi-platform image (default: the host's)")
	addInsecureFlag(cmd, &insecure)
	return cmd
}

// addInsecureFlag adds --insecure-registry to a command that talks to
// registries.
func addInsecureFlag(cmd *cobra.Command, hosts *[]string) {
	cmd.Flags().StringArrayVar(hosts, "insecure-registry", nil,
		"allow plain HTTP or unverified HTTPS for this registry (host[:port]; repeatable; env "+insecureRegistriesEnv+")")
}

// openRegistryStore opens the store at --root with the registries named
// insecure by flag and environment.
func openRegistryStore(a *app, insecure []string) (*oci.Store, error) {
	hosts := append([]string{}, insecure...)
	for _, h := range strings.Split(os.Getenv(insecureRegistriesEnv), ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	return oci.Open(a.root,
		oci.WithLogger(slog.New(&stderrHandler{w: a.stderr})),
		oci.WithInsecureRegistries(hosts...))
}

// blobPrinter prints one plain line per blob event worth a line:
//
//	pulling  sha256:… 12.3MB      (a transfer starts; "pushing" for a push)
//	exists   sha256:… 12.3MB      (nothing to move)
//	mounted  sha256:… 12.3MB from REPO
//	retrying sha256:…: ERROR
func blobPrinter(w io.Writer, verb string) func(oci.BlobProgress) {
	return func(p oci.BlobProgress) {
		switch p.Status {
		case oci.BlobTransferring:
			if p.Done == 0 {
				fmt.Fprintf(w, "%-8s %s %s\n", verb, p.Digest, humanSize(p.Size))
			}
		case oci.BlobExists:
			fmt.Fprintf(w, "%-8s %s %s\n", "exists", p.Digest, humanSize(p.Size))
		case oci.BlobMounted:
			fmt.Fprintf(w, "%-8s %s %s from %s\n", "mounted", p.Digest, humanSize(p.Size), p.From)
		case oci.BlobRemote:
			fmt.Fprintf(w, "%-8s %s %s\n", "remote", p.Digest, humanSize(p.Size))
		case oci.BlobRetrying:
			if p.Err != nil {
				fmt.Fprintf(w, "%-8s %s: %v\n", "retrying", p.Digest, p.Err)
			} else {
				fmt.Fprintf(w, "%-8s %s\n", "retrying", p.Digest)
			}
		}
	}
}
