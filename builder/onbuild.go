package builder

import (
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// dispatchOnbuild records a trigger in the image config for images built
// FROM this one. Like BuildKit it writes no history entry, so it makes no
// step. (Triggers inherited from the base are run at FROM: see
// planner.addTriggers.)
func dispatchOnbuild(st *stageState, c *instructions.OnbuildCommand) error {
	st.config.Config.OnBuild = append(st.config.Config.OnBuild, c.Expression)
	return nil
}
