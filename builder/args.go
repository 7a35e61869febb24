package builder

import (
	"fmt"
	"sort"
	"strings"
)

// metaScope builds the global scope FROM lines expand against: BuildKit's
// automatic platform args, then the ARGs before the first FROM (meta args),
// each taking its --build-arg value or its default expanded against what
// precedes it.
func (p *planner) metaScope() error {
	t := p.plan.Platform
	build := t // minibuild builds natively: the build platform is the target
	target := p.req.Target
	if target == "" {
		target = p.stages[len(p.stages)-1].Name
	}
	if target == "" {
		target = "default"
	}
	g := newScope()
	for _, kv := range [...][2]string{
		{"BUILDPLATFORM", formatPlatform(build)},
		{"BUILDOS", build.OS},
		{"BUILDOSVERSION", build.OSVersion},
		{"BUILDARCH", build.Architecture},
		{"BUILDVARIANT", build.Variant},
		{"TARGETPLATFORM", formatPlatform(t)},
		{"TARGETOS", t.OS},
		{"TARGETOSVERSION", t.OSVersion},
		{"TARGETARCH", t.Architecture},
		{"TARGETVARIANT", t.Variant},
		{"TARGETSTAGE", target},
	} {
		v := kv[1]
		if ov, ok := p.req.BuildArgs[kv[0]]; ok {
			v = ov
		}
		g.set(kv[0], v)
	}
	for _, cmd := range p.metaArgs {
		for _, kv := range cmd.Args {
			p.declared[kv.Key] = true
			if v, ok := p.req.BuildArgs[kv.Key]; ok {
				g.set(kv.Key, v)
				continue
			}
			if kv.Value == nil {
				continue
			}
			v, _, err := p.lex.ProcessWord(*kv.Value, g)
			if err != nil {
				return p.src.errorAt(locationOf(cmd.Location()), cmd.String(), err)
			}
			g.set(kv.Key, v)
		}
	}
	p.global = g
	return nil
}

// warnUnusedArgs reports --build-arg values no ARG consumed, like Docker's
// "One or more build-args were not consumed".
func (p *planner) warnUnusedArgs() {
	var unused []string
	for k := range p.req.BuildArgs {
		if p.declared[k] || isProxyArg(k) || k == "SOURCE_DATE_EPOCH" || isPlatformArg(k) {
			continue
		}
		unused = append(unused, k)
	}
	if len(unused) == 0 {
		return
	}
	sort.Strings(unused)
	p.warn(Location{}, fmt.Sprintf("one or more build-args [%s] were not consumed", strings.Join(unused, " ")))
}

func isPlatformArg(k string) bool {
	switch k {
	case "BUILDPLATFORM", "BUILDOS", "BUILDOSVERSION", "BUILDARCH", "BUILDVARIANT",
		"TARGETPLATFORM", "TARGETOS", "TARGETOSVERSION", "TARGETARCH", "TARGETVARIANT", "TARGETSTAGE":
		return true
	}
	return false
}
