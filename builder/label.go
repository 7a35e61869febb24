package builder

import (
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// dispatchLabel adds labels to the image config.
func dispatchLabel(st *stageState, step *Step, c *instructions.LabelCommand) error {
	cfg := &st.config.Config
	if cfg.Labels == nil {
		cfg.Labels = make(map[string]string, len(c.Labels))
	}
	msg := []string{"LABEL"}
	can := canonical{name: "LABEL"}
	for _, l := range c.Labels {
		cfg.Labels[l.Key] = l.Value
		msg = append(msg, l.Key+"="+l.Value)
		can.args = append(can.args, quoteArg(l.Key+"="+l.Value))
	}
	step.Instruction = can.String()
	st.commit(step, strings.Join(msg, " "), false)
	return nil
}
