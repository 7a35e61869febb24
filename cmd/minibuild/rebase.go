package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"minibuild/builder/inspect"
)

// rebaseOptions are the flags of `minibuild rebase`.
type rebaseOptions struct {
	onto, from, tag string
	strict, dryRun  bool
}

func newRebaseCmd(a *app) *cobra.Command {
	var o rebaseOptions
	cmd := &cobra.Command{
		Use:   "rebase [flags] IMAGE --onto NEWBASE",
		Short: "Move an image onto a new base image without rebuilding it",
		Long: `Replace the base layers of IMAGE with those of NEWBASE (a patched base, say)
and keep the image's own layers as they are. The old base comes from the
image's org.opencontainers.image.base.{digest,name} annotations, which
minibuild build records, unless --from names it; it must be a prefix of the
image's layers and of its history, else nothing happens.

The config is reconciled three ways. ENV: a variable the image inherited
takes the new base's value, one it set keeps the image's, and one it
extended (PATH=$PATH:/app/bin) gets the same extension of the new base's
value. Other fields (CMD, ENTRYPOINT, WORKDIR, USER, labels, ports, …) keep
the image's value unless the image inherited it from the old base.

Files the image's own layers write or delete that the new base changed are
conflicts: the image's version wins in the result. They are listed;
--strict refuses to write anything when there are any. --dry-run prints
the plan and writes nothing. The result is tagged with IMAGE's name unless
-t names it.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			if o.onto == "" {
				return &usageError{errors.New("rebase: --onto NEWBASE is required")}
			}
			s, err := openStore(a)
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, s.Close()) }()
			p, err := inspect.PlanRebase(cmd.Context(), s, inspect.RebaseRequest{Image: args[0], Onto: o.onto, From: o.from, Tag: o.tag})
			switch {
			case errors.Is(err, inspect.ErrNoBase) || errors.Is(err, inspect.ErrNotPrefix) && o.from == "":
				return fmt.Errorf("%w (--from OLDBASE names the old base)", err)
			case errors.Is(err, inspect.ErrNoTag):
				return fmt.Errorf("%w (-t NAME names the result)", err)
			case err != nil:
				return err
			}
			printRebasePlan(a.stdout, p)
			switch {
			case o.strict && len(p.Conflicts) > 0:
				return fmt.Errorf("rebase %s: %s and --strict: nothing written", args[0], plural(len(p.Conflicts), "conflicting path"))
			case o.dryRun:
				fmt.Fprintln(a.stdout, "Dry run: nothing written.")
				return nil
			}
			d, err := p.Write(cmd.Context())
			if err != nil {
				return err
			}
			if p.UpToDate {
				fmt.Fprintf(a.stdout, "%s is already based on %s: nothing to do.\n", p.Tag, baseLabel(p.NewBase))
				return nil
			}
			fmt.Fprintf(a.stdout, "Rebased %s: %s\n", p.Tag, d.Digest)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.onto, "onto", "", "the new base image (required)")
	f.StringVar(&o.from, "from", "", "the old base image (default: from the image's base annotations)")
	f.StringVarP(&o.tag, "tag", "t", "", "name the result (default: IMAGE's own name)")
	f.BoolVar(&o.strict, "strict", false, "fail, writing nothing, when the image's layers change files the new base changed")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the plan, write nothing")
	return cmd
}

// baseLabel is an image's name (or reference) and short ID.
func baseLabel(im *inspect.Image) string {
	name := im.Name
	if name == "" {
		name = im.Ref
	}
	return fmt.Sprintf("%s (%s)", name, shortID(im.Descriptor.Digest.Hex, false))
}

// printRebasePlan writes what the rebase does: bases, layers, config
// decisions that change something, conflicts, notes and warnings.
func printRebasePlan(w io.Writer, p *inspect.RebasePlan) {
	fmt.Fprintf(w, "Image:     %s\n", baseLabel(p.Image))
	fmt.Fprintf(w, "Old base:  %s, %s\n", baseLabel(p.OldBase), plural(len(p.Dropped), "layer"))
	fmt.Fprintf(w, "New base:  %s, %s\n", baseLabel(p.NewBase), plural(len(p.Added), "layer"))
	fmt.Fprintf(w, "Result:    %s\n", p.Tag)
	for _, n := range p.Notes {
		fmt.Fprintf(w, "Note: %s\n", n)
	}
	if p.UpToDate {
		return
	}
	fmt.Fprintln(w, "\nLayers:")
	shared := 0 // leading layers both bases have
	for shared < min(len(p.Dropped), len(p.Added)) && p.Dropped[shared].DiffID == p.Added[shared].DiffID {
		shared++
	}
	layerLine := func(mark string, l inspect.Layer, note string) {
		fmt.Fprintf(w, "  %s %s  %s%s\n", mark, shortID(l.Descriptor.Digest.Hex, false), orUnknown(l.Instruction()), note)
	}
	for _, l := range p.Added[:shared] {
		layerLine("=", l, "  (both bases)")
	}
	for _, l := range p.Dropped[shared:] {
		layerLine("-", l, "  (old base)")
	}
	for _, l := range p.Added[shared:] {
		layerLine("+", l, "  (new base)")
	}
	for _, l := range p.Kept {
		layerLine("=", l, "")
	}
	printEnvDecisions(w, p.Env)
	if len(p.Fields) > 0 {
		fmt.Fprintln(w, "\nConfig (inherited, now from the new base):")
		for _, f := range p.Fields {
			fmt.Fprintf(w, "  %s: %s → %s\n", f.Field, f.Before, f.After)
		}
	}
	if len(p.Conflicts) > 0 {
		fmt.Fprintf(w, "\nConflicts (%d): the image's version wins over the new base's change; a rebuild would redo the image's change on the new base\n", len(p.Conflicts))
		for _, c := range p.Conflicts {
			how := c.Image
			if c.Under != "" {
				how += " it with " + c.Under
			} else {
				how += " it"
			}
			fmt.Fprintf(w, "  %s  layer %d %s; the new base %s it%s\n", c.Path, c.Layer, how, baseVerb(c.Base), fieldList(c.Fields))
		}
	}
	for _, m := range p.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", m)
	}
	fmt.Fprintln(w)
}

// printEnvDecisions lists the variables whose value the rebase changes.
func printEnvDecisions(w io.Writer, ds []inspect.EnvDecision) {
	var rows []string
	for _, d := range ds {
		if !d.Changed() {
			continue
		}
		rows = append(rows, fmt.Sprintf("  %s: %s → %s (%s)", d.Name, envValue(d.Image), envValue(d.Result), envWhy(d.Action)))
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, "\nEnvironment:")
	fmt.Fprintln(w, strings.Join(rows, "\n"))
}

func envValue(v *string) string {
	if v == nil {
		return "(unset)"
	}
	return fmt.Sprintf("%q", *v)
}

func envWhy(a inspect.EnvAction) string {
	switch a {
	case inspect.EnvInherited:
		return "inherited: the new base's value"
	case inspect.EnvExtended:
		return "the image's additions to the new base's value"
	case inspect.EnvAdded:
		return "new in the new base"
	case inspect.EnvDropped:
		return "the new base no longer sets it"
	}
	return "set by the image"
}

func baseVerb(k inspect.ChangeKind) string {
	switch k {
	case inspect.Added:
		return "added"
	case inspect.Deleted:
		return "deleted"
	}
	return "changed"
}

func fieldList(fs []string) string {
	if len(fs) == 0 {
		return ""
	}
	return " (" + strings.Join(fs, ", ") + ")"
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
