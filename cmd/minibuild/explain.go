package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"minibuild/builder"
	"minibuild/cache"
)

const explainHelp = `Work out, without building, which steps of the Dockerfile the cache
would satisfy, and say why each other step would run: the first part of
its cache key that differs from the last build of this Dockerfile in this
store. For example:

  rebuilt  step 4/9 COPY src/ /app/src: input changed: src/main.go (content), src/new.go (added)
  rebuilt  step 5/9 RUN make: parent changed (step 4 was rebuilt)

A step's key covers the step before it (its parent), the instruction after
ARG/ENV expansion, the variables it can see (ENV, ARGs in scope, WORKDIR,
USER, SHELL), the content and metadata of the files it reads (never their
modification times) and the platform. Once a step misses, every later step
of its stage misses too, because its parent changed.

Use the same --build-arg, --target, --build-context, --platform,
--network, --no-cache and --no-cache-filter as the build you want to
predict. "minibuild build
--explain" prints the same after a real build; --json is for tools.`

func newExplainCmd(a *app) *cobra.Command {
	var k keyOptions
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "explain [-f Dockerfile] [flags] [CONTEXT]",
		Short: "Explain which steps a build would take from the cache, and why the others would run",
		Long:  explainHelp,
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			req, cleanup, err := k.request(dir, cmd.InOrStdin(), os.LookupEnv)
			defer cleanup()
			if err != nil {
				return err
			}
			steps, err := explainBuild(cmd.Context(), a, req)
			if err != nil {
				file := ""
				if k.file == "-" {
					file = "Dockerfile"
				}
				if cmd.Context().Err() != nil {
					return err
				}
				printBuildError(a.stderr, err, file, nil)
				return &exitError{code: exitFailure}
			}
			if asJSON {
				return printExplainJSON(a.stdout, steps)
			}
			printExplain(a.stdout, steps)
			return nil
		},
	}
	addKeyFlags(cmd.Flags(), &k)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the explanation as JSON")
	return cmd
}

// explainStep is one step of an explanation, from a build's result or a
// dry run.
type explainStep struct {
	Stage       string
	Index       int // 1-based position in the stage, as progress shows it
	Total       int
	Line        int
	Text        string // the instruction, without the "[stage n/m]" prefix
	Cached      bool
	Key         v1.Hash
	Reason      *cache.Reason // nil for a hit
	stageOrder  int
	resultOrder int
}

// stepsFromResult lists a finished build's steps for explanation.
func stepsFromResult(res *builder.Result) []explainStep {
	steps := make([]explainStep, 0, len(res.Steps))
	for i, st := range res.Steps {
		if st.Step == 0 {
			continue // changes only the config: never looked up
		}
		es := explainStep{
			Stage: st.Stage, Index: st.Step, Total: st.Steps, Line: st.Location.Start,
			Text: instructionText(st.Name), Cached: st.Cached, Key: st.Key, resultOrder: i,
		}
		if !st.Cached {
			r := st.Reason
			if r.Kind == "" {
				r.Kind = cache.ReasonNoPrevious
			}
			es.Reason = &r
		}
		steps = append(steps, es)
	}
	return sortSteps(steps)
}

// stepsFromReports lists the steps of a dry run.
func stepsFromReports(reps []cache.StepReport) []explainStep {
	steps := make([]explainStep, 0, len(reps))
	for i, r := range reps {
		steps = append(steps, explainStep{
			Stage: r.Step.Stage, Index: r.Step.Index, Total: r.Step.Total, Line: r.Step.Line,
			Text: r.Step.Text, Cached: r.Reason == nil, Key: r.Key, Reason: r.Reason, resultOrder: i,
		})
	}
	return sortSteps(steps)
}

// sortSteps orders steps by stage (stages in the order their first step
// appears) and position; a build reports them in the order they finished.
func sortSteps(steps []explainStep) []explainStep {
	order := map[string]int{}
	for _, s := range steps {
		if _, ok := order[s.Stage]; !ok {
			order[s.Stage] = len(order)
		}
	}
	for i := range steps {
		steps[i].stageOrder = order[steps[i].Stage]
	}
	slices.SortStableFunc(steps, func(a, b explainStep) int {
		return cmp.Or(cmp.Compare(a.stageOrder, b.stageOrder), cmp.Compare(a.Index, b.Index))
	})
	return steps
}

// instructionText strips the "[stage 2/5] " prefix of a display name.
func instructionText(name string) string {
	if strings.HasPrefix(name, "[") {
		if i := strings.Index(name, "] "); i > 0 {
			return name[i+2:]
		}
	}
	return name
}

// line is "step 4/9 COPY src/ /app/src", the words the explanation uses.
func (s explainStep) line() string {
	return fmt.Sprintf("step %d/%d %s", s.Index, s.Total, firstLine(s.Text))
}

// why is the reason in words, ": …" after line.
func (s explainStep) why() string {
	if s.Reason == nil {
		return ""
	}
	return s.Reason.String()
}

// printExplain prints one line per step, grouped by stage when there are
// several, then a summary that says where the chain of misses starts.
func printExplain(w io.Writer, steps []explainStep) {
	stages := 0
	for i, s := range steps {
		if i == 0 || s.Stage != steps[i-1].Stage {
			stages++
		}
	}
	var missed []explainStep
	parentMiss := false
	fmt.Fprintln(w, "Cache report, compared with the last build of this Dockerfile in this store:")
	for i, s := range steps {
		if stages > 1 && (i == 0 || s.Stage != steps[i-1].Stage) {
			fmt.Fprintf(w, "stage %s:\n", s.Stage)
		}
		if s.Cached {
			fmt.Fprintf(w, "  cached   %s\n", s.line())
			continue
		}
		missed = append(missed, s)
		parentMiss = parentMiss || s.Reason.Kind == cache.ReasonParent
		fmt.Fprintf(w, "  rebuilt  %s: %s\n", s.line(), s.why())
	}
	fmt.Fprintln(w)
	switch {
	case len(steps) == 0:
		fmt.Fprintln(w, "No steps to explain: the build has no filesystem steps.")
	case len(missed) == 0:
		fmt.Fprintf(w, "All %d steps cached: nothing this build reads has changed since the last one.\n", len(steps))
	default:
		first := missed[0]
		fmt.Fprintf(w, "%d of %d steps cached, %d rebuilt. The first rebuilt step is %s", len(steps)-len(missed), len(steps), len(missed), first.line())
		if first.Line > 0 {
			fmt.Fprintf(w, " (Dockerfile line %d)", first.Line)
		}
		fmt.Fprintln(w, ".")
		if parentMiss {
			fmt.Fprintln(w, "A rebuilt step gives every later step of its stage a new parent, so those are rebuilt too.")
		}
	}
}

// explainJSON is one step of `explain --json`.
type explainJSON struct {
	Stage  string        `json:"stage"`
	Index  int           `json:"index"`
	Total  int           `json:"total"`
	Line   int           `json:"line,omitempty"`
	Text   string        `json:"text"`
	Cached bool          `json:"cached"`
	Key    string        `json:"key,omitempty"`
	Why    string        `json:"why,omitempty"`
	Reason *cache.Reason `json:"reason,omitempty"`
}

func printExplainJSON(w io.Writer, steps []explainStep) error {
	out := make([]explainJSON, 0, len(steps))
	for _, s := range steps {
		j := explainJSON{Stage: s.Stage, Index: s.Index, Total: s.Total, Line: s.Line, Text: s.Text, Cached: s.Cached, Why: s.why(), Reason: s.Reason}
		if s.Key != (v1.Hash{}) {
			j.Key = s.Key.String()
		}
		out = append(out, j)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fmt.Errorf("encode explanation: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// printMissed lists the steps that missed the cache for --expect-cached.
func printMissed(w io.Writer, steps []explainStep) int {
	var missed []explainStep
	for _, s := range steps {
		if !s.Cached {
			missed = append(missed, s)
		}
	}
	if len(missed) == 0 {
		return 0
	}
	fmt.Fprintf(w, "minibuild: --expect-cached: %d of %d steps were not cached:\n", len(missed), len(steps))
	for _, s := range missed {
		fmt.Fprintf(w, "  %s: %s\n", s.line(), s.why())
	}
	return len(missed)
}
