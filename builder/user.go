package builder

import (
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// dispatchUser sets the user later RUN and WORKDIR steps and the container
// run as.
func dispatchUser(st *stageState, step *Step, c *instructions.UserCommand) error {
	st.config.Config.User = c.User
	step.Instruction = "USER " + quoteArg(c.User)
	st.commit(step, "USER "+c.User, false)
	return nil
}
