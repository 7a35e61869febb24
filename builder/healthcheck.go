package builder

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// healthcheckConfig mirrors the field order of Docker's HealthcheckConfig
// so that the history line ("HEALTHCHECK {Test:[…] Interval:30s …}") reads
// exactly like BuildKit's.
type healthcheckConfig struct {
	Test          []string
	Interval      time.Duration
	Timeout       time.Duration
	StartPeriod   time.Duration
	StartInterval time.Duration
	Retries       int
}

// dispatchHealthcheck sets the container health check, all options
// included. NOTE: go-containerregistry's v1.HealthConfig has no
// StartInterval field, so --start-interval reaches the history line and the
// cache key but not the config JSON.
func dispatchHealthcheck(st *stageState, step *Step, c *instructions.HealthCheckCommand) error {
	h := c.Health
	st.config.Config.Healthcheck = &v1.HealthConfig{
		Test:        slices.Clone(h.Test),
		Interval:    h.Interval,
		Timeout:     h.Timeout,
		StartPeriod: h.StartPeriod,
		Retries:     h.Retries,
	}
	can := canonical{name: "HEALTHCHECK"}
	if len(h.Test) == 1 && h.Test[0] == "NONE" {
		can.args = []string{"NONE"}
	} else {
		can.flag("interval", durationFlag(h.Interval))
		can.flag("timeout", durationFlag(h.Timeout))
		can.flag("start-period", durationFlag(h.StartPeriod))
		can.flag("start-interval", durationFlag(h.StartInterval))
		if h.Retries != 0 {
			can.flag("retries", strconv.Itoa(h.Retries))
		}
		can.jsonArg(h.Test)
	}
	step.Instruction = can.String()
	hc := healthcheckConfig{h.Test, h.Interval, h.Timeout, h.StartPeriod, h.StartInterval, h.Retries}
	st.commit(step, fmt.Sprintf("HEALTHCHECK %+v", hc), false)
	return nil
}

func durationFlag(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}
