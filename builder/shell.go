package builder

import (
	"fmt"
	"slices"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// dispatchShell sets the shell later shell-form RUN, CMD and ENTRYPOINT
// use. SHELL only has a JSON form; the parser enforces it.
func dispatchShell(st *stageState, step *Step, c *instructions.ShellCommand) error {
	st.config.Config.Shell = slices.Clone(c.Shell)
	can := canonical{name: "SHELL"}
	can.jsonArg(c.Shell)
	step.Instruction = can.String()
	st.commit(step, fmt.Sprintf("SHELL %v", c.Shell), false)
	return nil
}
