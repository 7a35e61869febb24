package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"minibuild/builder/inspect"
)

// bloatOptions are the flags of `minibuild bloat`.
type bloatOptions struct {
	jsonOut       bool
	noColor       bool
	top           int
	maxWasted     string
	minEfficiency string
}

// bloatGate is a parsed CI gate: either bound may be unset (negative).
type bloatGate struct {
	maxWasted     int64   // bytes; -1: no bound
	minEfficiency float64 // 0..1; -1: no bound
}

func newBloatCmd(a *app) *cobra.Command {
	var o bloatOptions
	cmd := &cobra.Command{
		Use:   "bloat [flags] IMAGE",
		Short: "Show the bytes an image's layers waste, and what to change",
		Long: `Show, per layer, the bytes of earlier layers it hides: files it overwrites,
deletes (whiteouts, opaque directories) or copies up whole to change their
metadata (chmod -R, chown -R, touch). Those bytes still ship in the
earlier layer: every puller downloads and stores them. Each hidden version
is charged to the layer that hid it, with a one-line fix per pattern.

Efficiency is the final tree's bytes over the bytes of all layers, dive's
score for the same image. As a CI gate, --max-wasted and --min-efficiency
make minibuild exit 4 when the image is worse than the bound (the report
is printed first):

  --max-wasted 10MB        more than 10 MB wasted fails (kB/MB/GB are
                           powers of 1000, KiB/MiB/GiB of 1024, plain
                           numbers are bytes)
  --min-efficiency 95%     below 95% fails (also 95 or 0.95)`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			gate, err := parseGate(o)
			if err != nil {
				return &usageError{err}
			}
			s, err := openStore(a)
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, s.Close()) }()
			im, err := inspect.Open(s, args[0])
			if err != nil {
				return err
			}
			r, err := im.Bloat(cmd.Context())
			if err != nil {
				return err
			}
			if o.jsonOut {
				err = writeJSON(a.stdout, r)
			} else {
				err = printBloat(a.stdout, im, r, bloatStyleFor(a.stdout, o))
			}
			if err != nil {
				return err
			}
			return gate.check(r)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
	f.BoolVar(&o.noColor, "no-color", false, "plain ASCII output, no colors (also when stdout is not a terminal, or NO_COLOR is set)")
	f.IntVar(&o.top, "top", 10, "how many paths to list among the biggest offenders")
	f.StringVar(&o.maxWasted, "max-wasted", "", "exit 4 when more than `SIZE` is wasted")
	f.StringVar(&o.minEfficiency, "min-efficiency", "", "exit 4 when the efficiency is below `P` (95%, 95 or 0.95)")
	return cmd
}

func parseGate(o bloatOptions) (bloatGate, error) {
	g := bloatGate{maxWasted: -1, minEfficiency: -1}
	var err error
	if o.maxWasted != "" {
		if g.maxWasted, err = parseSize(o.maxWasted); err != nil {
			return g, fmt.Errorf("--max-wasted: %w", err)
		}
	}
	if o.minEfficiency != "" {
		if g.minEfficiency, err = parseRatio(o.minEfficiency); err != nil {
			return g, fmt.Errorf("--min-efficiency: %w", err)
		}
	}
	if o.top < 0 {
		return g, fmt.Errorf("--top %d: want 0 or more", o.top)
	}
	return g, nil
}

// check returns an exitGate error naming every bound the report exceeds.
func (g bloatGate) check(r *inspect.BloatReport) error {
	var errs []error // of the bounds exceeded
	if g.maxWasted >= 0 && r.WastedBytes > g.maxWasted {
		errs = append(errs, fmt.Errorf("wasted %s (%d bytes) exceeds --max-wasted %s", humanSize(r.WastedBytes), r.WastedBytes, humanSize(g.maxWasted)))
	}
	if g.minEfficiency >= 0 && r.Efficiency < g.minEfficiency {
		errs = append(errs, fmt.Errorf("efficiency %s is below --min-efficiency %s", percent(r.Efficiency), percent(g.minEfficiency)))
	}
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return &exitError{code: exitGate, err: fmt.Errorf("bloat gate: %s", strings.Join(msgs, "; "))}
}

// sizeUnits are the suffixes parseSize takes: SI like the sizes minibuild
// prints ("4.19MB" can be pasted back), binary with an "i".
var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// parseSize reads "10MB", "4.5MiB", "512k", "1048576".
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	n, err := strconv.ParseFloat(t[:i], 64)
	unit, ok := sizeUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if err != nil || !ok || n < 0 || math.IsInf(n*unit, 0) {
		return 0, fmt.Errorf("size %q: want a number of bytes with an optional unit (kB, MB, GB, KiB, MiB, GiB)", s)
	}
	return int64(math.Round(n * unit)), nil
}

// parseRatio reads "95%", "95" or "0.95" as 0.95: a number up to 1 is a
// ratio, a bigger one a percentage.
func parseRatio(s string) (float64, error) {
	t := strings.TrimSpace(s)
	pct := strings.HasSuffix(t, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(t, "%"), 64)
	if err == nil && (pct || v > 1) {
		v /= 100
	}
	if err != nil || v < 0 || v > 1 || math.IsNaN(v) {
		return 0, fmt.Errorf("%q: want a percentage (95%%, 95) or a ratio (0.95)", s)
	}
	return v, nil
}

func percent(v float64) string { return strconv.FormatFloat(v*100, 'f', 1, 64) + "%" }

// bloatStyle is how the report is drawn.
type bloatStyle struct {
	unicode, color bool
	cols           int // terminal width; 0 when not a terminal
	top            int
}

func bloatStyleFor(w io.Writer, o bloatOptions) bloatStyle {
	cols, _ := termSize(w)
	fancy := cols > 0 && !o.noColor && os.Getenv("NO_COLOR") == ""
	return bloatStyle{unicode: fancy, color: fancy, cols: cols, top: o.top}
}
