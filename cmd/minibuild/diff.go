package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"minibuild/builder/inspect"
)

// layerDiffOutput is `minibuild diff IMAGE --json`.
type layerDiffOutput struct {
	Layer     int              `json:"layer"`
	Layers    int              `json:"layers"`
	Digest    string           `json:"digest"`
	CreatedBy string           `json:"created_by,omitempty"`
	Changes   []inspect.Change `json:"changes"`
}

// imageDiffOutput is `minibuild diff A B --json`.
type imageDiffOutput struct {
	From    string           `json:"from"`
	To      string           `json:"to"`
	Changes []inspect.Change `json:"changes"`
}

func newDiffCmd(a *app) *cobra.Command {
	var layerN int
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "diff [flags] IMAGE [IMAGE2]",
		Short: "Show the files a layer changed, or how two images differ",
		Long: `With one image, show what its last layer changed (--layer N for another)
compared with the layers below it; with two, how the files of IMAGE2 differ
from those of IMAGE. One line per path, sorted, like docker diff:

  A  added      C  changed      D  deleted (one line for a whole directory)

with the size of the file (for D, of everything deleted) and, for C, what
changed: mode, owner, content, type, link target, xattrs (never mtime).
A directory a layer wrote again only because its children changed shows as
C with no detail. The layer shown is named on stderr.

--layer counts layers bottom up from 1, as "minibuild history" lists them
from the bottom; negative numbers count from the top (-1 is the last layer).`,
		Args: rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			if len(args) == 2 && cmd.Flags().Changed("layer") {
				return &usageError{errors.New("diff: --layer compares one image's layer; give one image")}
			}
			s, err := openStore(a)
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, s.Close()) }()
			imgs := make([]*inspect.Image, len(args))
			for i, ref := range args {
				if imgs[i], err = inspect.Open(s, ref); err != nil {
					return err
				}
			}
			if len(imgs) == 2 {
				changes, err := inspect.DiffImages(cmd.Context(), imgs[0], imgs[1])
				if err != nil {
					return err
				}
				if jsonOut {
					return writeJSON(a.stdout, imageDiffOutput{From: args[0], To: args[1], Changes: nonNil(changes)})
				}
				return printChanges(a.stdout, changes)
			}
			d, err := imgs[0].DiffLayer(cmd.Context(), layerN)
			if err != nil {
				return err
			}
			if jsonOut {
				out := layerDiffOutput{Layer: d.Layer.Index, Layers: len(imgs[0].Manifest.Layers), Digest: d.Layer.Descriptor.Digest.String(), Changes: nonNil(d.Changes)}
				if d.Layer.History != nil {
					out.CreatedBy = d.Layer.History.CreatedBy
				}
				return writeJSON(a.stdout, out)
			}
			fmt.Fprintf(a.stderr, "layer %d of %d (%s): %s\n", d.Layer.Index, len(imgs[0].Manifest.Layers),
				shortID(d.Layer.Descriptor.Digest.Hex, false), orUnknown(d.Layer.Instruction()))
			return printChanges(a.stdout, d.Changes)
		},
	}
	cmd.Flags().IntVar(&layerN, "layer", 0, "the layer to show: 1-based from the bottom, negative from the top (default: the last)")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the changes as JSON, with both sides' attributes")
	return cmd
}

func nonNil(cs []inspect.Change) []inspect.Change {
	if cs == nil {
		return []inspect.Change{}
	}
	return cs
}

func orUnknown(s string) string {
	if s == "" {
		return "(no history)"
	}
	return s
}

// printChanges writes "A /path  1.05MB" lines, aligned.
func printChanges(w io.Writer, cs []inspect.Change) error {
	tw := newTable(w, 2)
	for _, c := range cs {
		fmt.Fprintf(tw, "%s %s\t%s\t%s\n", c.Kind, truncate(c.Path, len(c.Path)), changeSize(c), changeDetail(c))
	}
	return tw.flush()
}

// changeSize is the size column: empty for directories and for links.
func changeSize(c inspect.Change) string {
	f := c.After
	if c.Kind == inspect.Deleted {
		f = c.Before
	}
	if f.Type == inspect.TypeFile || c.Kind == inspect.Deleted && c.Size > 0 {
		return humanSize(c.Size)
	}
	return ""
}

// changeDetail says what a C changed: "mode 0644→0777", "owner 0:0→1000:1000".
func changeDetail(c inspect.Change) string {
	if c.Kind != inspect.Changed {
		return ""
	}
	b, a := c.Before, c.After
	var parts []string
	for _, f := range c.Fields {
		switch f {
		case "type":
			parts = append(parts, fmt.Sprintf("type %s→%s", b.Type, a.Type))
		case "mode":
			parts = append(parts, fmt.Sprintf("mode %s→%s", b.Mode, a.Mode))
		case "owner":
			parts = append(parts, fmt.Sprintf("owner %d:%d→%d:%d", b.UID, b.GID, a.UID, a.GID))
		case "link":
			parts = append(parts, fmt.Sprintf("link %q→%q", b.Linkname, a.Linkname))
		case "content":
			if b.Type == a.Type {
				parts = append(parts, fmt.Sprintf("content (was %s)", humanSize(b.Size)))
			}
		default:
			parts = append(parts, f)
		}
	}
	return strings.Join(parts, ", ")
}
