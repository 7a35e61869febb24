package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"minibuild/builder/inspect"
	"minibuild/layer"
)

// createdByWidth is how much of CREATED BY history shows, as docker does.
const createdByWidth = 45

func newHistoryCmd(a *app) *cobra.Command {
	var noTrunc, jsonOut, human bool
	cmd := &cobra.Command{
		Use:   "history [flags] IMAGE",
		Short: "Show the history of an image: what each instruction added",
		Long: `Show one row per history entry of IMAGE, newest first, like docker history:
the layer it made (<missing> for instructions that only change the config),
when, the instruction, the layer's size and the entry's comment.

SIZE is the content bytes of the layer (the sum of its files' sizes), what
docker history shows too; --json adds the compressed size and digests.
CREATED is relative ("3 days ago"), or a date for reproducible builds
stamped with the fixed epoch (1980-01-02) or the Unix epoch.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			s, err := openStore(a)
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, s.Close()) }()
			im, err := inspect.Open(s, args[0])
			if err != nil {
				return err
			}
			rows, err := im.History(cmd.Context())
			if err != nil {
				return err
			}
			if jsonOut {
				return writeJSON(a.stdout, rows)
			}
			return printHistory(a.stdout, rows, historyFormat{noTrunc: noTrunc, human: human, now: time.Now()})
		},
	}
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "do not truncate the output")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the rows as JSON")
	cmd.Flags().BoolVarP(&human, "human", "H", true, "print sizes and dates in human readable format")
	return cmd
}

// historyFormat says how printHistory writes.
type historyFormat struct {
	noTrunc, human bool
	now            time.Time
}

func printHistory(w io.Writer, rows []inspect.HistoryEntry, f historyFormat) error {
	tw := newTable(w, 3)
	fmt.Fprintln(tw, "LAYER\tCREATED\tCREATED BY\tSIZE\tCOMMENT")
	for _, r := range rows {
		id := "<missing>"
		if r.Layer > 0 {
			id = shortID(r.Digest.Hex, f.noTrunc)
		}
		by := truncate(r.CreatedBy, len(r.CreatedBy))
		if !f.noTrunc {
			by = ellipsis(by, createdByWidth)
		}
		size := strconv.FormatInt(r.Size, 10)
		if f.human {
			size = humanSize(r.Size)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", id, historyCreated(r.Created, f.now, f.human), by, size, r.Comment)
	}
	return tw.flush()
}

// historyCreated prints when a history entry was made: relative, except
// for the fixed times of reproducible builds, where "45 years ago" would
// say nothing.
func historyCreated(t, now time.Time, human bool) string {
	switch {
	case t.IsZero():
		return "N/A"
	case !human:
		return t.UTC().Format(time.RFC3339)
	case t.Unix() == layer.DefaultEpoch || t.Unix() == 0:
		return t.UTC().Format(time.DateOnly)
	}
	return created(t, now)
}

// ellipsis cuts s to n characters, the last one "…" when it cut.
func ellipsis(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// table is a tabwriter whose lines lose the spaces that pad an empty last
// column; flush writes them to w.
type table struct {
	*tabwriter.Writer
	buf bytes.Buffer
	w   io.Writer
}

func newTable(w io.Writer, padding int) *table {
	t := &table{w: w}
	t.Writer = tabwriter.NewWriter(&t.buf, 0, 8, padding, ' ', 0)
	return t
}

func (t *table) flush() error {
	if err := t.Flush(); err != nil {
		return err
	}
	for line := range strings.Lines(t.buf.String()) {
		if _, err := io.WriteString(t.w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}
