package builder

import (
	"fmt"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// dispatchCmd sets the default command. The shell form is wrapped in SHELL
// (or /bin/sh -c) now, as Docker does.
func dispatchCmd(st *stageState, step *Step, c *instructions.CmdCommand) error {
	args := c.CmdLine
	if c.PrependShell {
		args = st.withShell(args)
	}
	cfg := &st.config.Config
	cfg.Cmd = args
	cfg.ArgsEscaped = true
	st.cmdSet = true
	can := canonical{name: "CMD"}
	can.jsonArg(args)
	step.Instruction = can.String()
	st.commit(step, fmt.Sprintf("CMD %q", args), false)
	return nil
}
