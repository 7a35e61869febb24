package builder

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// dispatchStopSignal sets the signal that stops the container, checked
// like Docker does (a number, or a Linux signal name with or without SIG).
func dispatchStopSignal(st *stageState, step *Step, c *instructions.StopSignalCommand) error {
	if err := checkSignal(c.Signal); err != nil {
		return err
	}
	st.config.Config.StopSignal = c.Signal
	step.Instruction = "STOPSIGNAL " + quoteArg(c.Signal)
	st.commit(step, "STOPSIGNAL "+c.Signal, false)
	return nil
}

// checkSignal accepts what moby/sys/signal.ParseSignal accepts on Linux.
func checkSignal(raw string) error {
	if n, err := strconv.Atoi(raw); err == nil {
		if n <= 0 {
			return fmt.Errorf("invalid signal: %s", raw)
		}
		return nil
	}
	name := strings.TrimPrefix(strings.ToUpper(raw), "SIG")
	switch name {
	case "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT",
		"IO", "IOT", "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV",
		"STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP", "TTIN", "TTOU", "URG",
		"USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ", "RTMIN", "RTMAX":
		return nil
	}
	for _, prefix := range []string{"RTMIN+", "RTMAX-"} {
		if n, ok := strings.CutPrefix(name, prefix); ok {
			if v, err := strconv.Atoi(n); err == nil && v >= 1 && v <= 15 {
				return nil
			}
		}
	}
	return fmt.Errorf("invalid signal: %s", raw)
}
