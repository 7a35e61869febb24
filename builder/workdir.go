package builder

import (
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"minibuild/cache"
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
	observes := cache.ObservesWorkdir
	if !strings.HasPrefix(c.Path, "/") {
		observes = cache.ObservesWorkdirRelative // resolved against the previous one
	}
	step.keyInstruction(cache.Instruction{Keyword: "WORKDIR", Args: []string{c.Path}}, observes)
	st.commit(step, "WORKDIR "+wd, layer)
	return nil
}
