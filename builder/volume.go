package builder

import (
	"errors"
	"fmt"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// dispatchVolume declares mount points in the image config.
func dispatchVolume(st *stageState, step *Step, c *instructions.VolumeCommand) error {
	cfg := &st.config.Config
	if cfg.Volumes == nil {
		cfg.Volumes = map[string]struct{}{}
	}
	for _, v := range c.Volumes {
		if v == "" {
			return errors.New("VOLUME specified can not be an empty string")
		}
		cfg.Volumes[v] = struct{}{}
	}
	step.Instruction = "VOLUME " + joinArgs(quoteArgs(c.Volumes))
	st.commit(step, fmt.Sprintf("VOLUME %v", c.Volumes), false)
	return nil
}
