package main

import (
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newImagesCmd(a *app) *cobra.Command {
	var quiet, noTrunc bool
	cmd := &cobra.Command{
		Use:   "images",
		Short: "List images in the store",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			s, err := openStore(a)
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, s.Close()) }()
			infos, err := s.Images()
			if err != nil {
				return err
			}
			if quiet {
				seen := map[string]bool{}
				for _, in := range infos {
					if id := shortID(in.Digest.Hex, noTrunc); !seen[id] {
						seen[id] = true
						fmt.Fprintln(a.stdout, id)
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "NAME\tDIGEST\tSIZE\tCREATED")
			now := time.Now()
			for _, in := range infos {
				name := in.Name
				if name == "" {
					name = "<none>"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, shortID(in.Digest.Hex, noTrunc), humanSize(in.Size), created(in.Created, now))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only digests")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "print full digests")
	return cmd
}

// shortID is the first 12 hex digits of a digest, like Docker's image IDs.
func shortID(hex string, full bool) string {
	if full || len(hex) < 12 {
		return "sha256:" + hex
	}
	return hex[:12]
}

// humanSize prints a byte count with 3 significant digits in SI units, as
// Docker does ("4.26MB").
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	v := float64(n)
	i := 0
	for v >= 1000 && i < len(units)-1 {
		v /= 1000
		i++
	}
	return fmt.Sprintf("%.3g%s", v, units[i])
}

// created prints how long ago t was, Docker style ("3 days ago").
func created(t, now time.Time) string {
	if t.IsZero() {
		return "N/A"
	}
	d := now.Sub(t)
	if d < 0 {
		return t.UTC().Format(time.RFC3339)
	}
	return humanDuration(d) + " ago"
}

func humanDuration(d time.Duration) string {
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch s := int(d.Seconds()); {
	case s < 1:
		return "Less than a second"
	case s < 60:
		return plural(s, "second")
	case d < 47*time.Minute:
		return plural(int(d.Minutes()), "minute")
	case d < 48*time.Hour:
		return plural(int(d.Hours()+0.5), "hour")
	case d < 14*24*time.Hour:
		return plural(int(d.Hours()/24), "day")
	case d < 60*24*time.Hour:
		return plural(int(d.Hours()/24/7), "week")
	case d < 2*365*24*time.Hour:
		return plural(int(d.Hours()/24/30), "month")
	}
	return plural(int(d.Hours()/24/365), "year")
}
