package builder

import (
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// dispatchArg declares build arguments in the stage, following BuildKit's
// order of precedence: a --build-arg value, else the default (expanded
// against the stage scope), else the value of the meta ARG of that name
// (`ARG NAME` inside a stage re-declares a global one). A value enters the
// scope, so later instructions — and RUN's environment — see it.
func dispatchArg(st *stageState, step *Step, c *instructions.ArgCommand) error {
	msg := make([]string, 0, len(c.Args))
	can := canonical{name: "ARG"}
	for _, kv := range c.Args {
		key := kv.Key
		var value *string
		if v, ok := st.p.req.BuildArgs[key]; ok {
			value = &v
		} else if kv.Value != nil {
			v, _, err := st.p.lex.ProcessWord(*kv.Value, st.env)
			if err != nil {
				return err
			}
			value = &v
		} else if v, ok := st.p.global.Get(key); ok {
			value = &v
		}
		if value != nil {
			st.env.set(key, *value)
		}
		st.args = append(st.args, stageArg{key: key, value: value})
		item := key
		if value != nil {
			item += "=" + *value
		}
		msg = append(msg, item)
		can.args = append(can.args, quoteArg(item))
	}
	step.Instruction = can.String()
	st.commit(step, "ARG "+strings.Join(msg, " "), false)
	return nil
}
