package builder

import (
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// dispatchMaintainer sets the image author. MAINTAINER is deprecated (a
// LABEL is preferred) but still honoured, as in Docker.
func dispatchMaintainer(st *stageState, step *Step, c *instructions.MaintainerCommand) error {
	st.config.Author = c.Maintainer
	step.Instruction = "MAINTAINER " + quoteArg(c.Maintainer)
	st.commit(step, "MAINTAINER "+c.Maintainer, false)
	return nil
}
