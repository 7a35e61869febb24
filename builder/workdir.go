package builder

import (
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// dispatchWorkdir sets the working directory, relative to the current one
// for a relative path. Any directory but "/" is also created (mkdir -p,
// owned by the current USER, like BuildKit): a filesystem step.
func dispatchWorkdir(st *stageState, step *Step, c *instructions.WorkdirCommand) error {
	wd := normalizeWorkdir(st.config.Config.WorkingDir, c.Path)
	st.config.Config.WorkingDir = wd
	layer := wd != "/"
	if layer {
		step.Workdir = &WorkdirOp{Path: wd, User: st.config.Config.User}
	}
	step.Instruction = "WORKDIR " + quoteArg(wd)
	st.commit(step, "WORKDIR "+wd, layer)
	return nil
}
