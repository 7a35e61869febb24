package builder

import (
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// dispatchEnv sets environment variables in the image config and in the
// scope later instructions expand against. All pairs of one ENV are
// expanded before any is set (ENV A=1 B=$A uses the previous A).
func dispatchEnv(st *stageState, step *Step, c *instructions.EnvCommand) error {
	msg := []string{"ENV"}
	can := canonical{name: "ENV"}
	for _, e := range c.Env {
		st.env.set(e.Key, e.Value)
		st.config.Config.Env = setEnv(st.config.Config.Env, e.Key, e.Value)
		msg = append(msg, e.Key+"="+e.Value)
		can.args = append(can.args, quoteArg(e.Key+"="+e.Value))
	}
	step.Instruction = can.String()
	st.commit(step, strings.Join(msg, " "), false)
	return nil
}
