package builder

import (
	"fmt"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// dispatchEntrypoint sets the entrypoint. Like Docker, it resets CMD unless
// CMD was set earlier in this same stage: a CMD inherited from the base
// was written for the base's entrypoint.
func dispatchEntrypoint(st *stageState, step *Step, c *instructions.EntrypointCommand) error {
	args := c.CmdLine
	if c.PrependShell {
		args = st.withShell(args)
	}
	cfg := &st.config.Config
	cfg.Entrypoint = args
	if !st.cmdSet {
		cfg.Cmd = nil
	}
	can := canonical{name: "ENTRYPOINT"}
	can.jsonArg(args)
	step.Instruction = can.String()
	st.commit(step, fmt.Sprintf("ENTRYPOINT %q", args), false)
	return nil
}
