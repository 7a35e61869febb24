package builder

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"minibuild/cache"
)

// dispatchRun plans a RUN: the argv (SHELL prepended for the shell form,
// heredocs resolved like BuildKit), the process environment and the
// --mount/--network/--security options. The shell, not the builder,
// expands variables in the command itself.
func dispatchRun(st *stageState, step *Step, c *instructions.RunCommand) error {
	args, files, err := runArgs(c)
	if err != nil {
		return err
	}
	if c.PrependShell {
		args = st.withShell(args)
	}
	cfg := st.config.Config
	op := &RunOp{
		Args:       args,
		Env:        append(st.env.environ(), st.proxyEnv()...),
		WorkingDir: cfg.WorkingDir,
		User:       cfg.User,
		Network:    instructions.GetNetwork(c),
		Security:   instructions.GetSecurity(c),
		Mounts:     instructions.GetMounts(c),
		Files:      files,
	}
	if len(op.Mounts) == 0 {
		op.Mounts = nil
	}
	step.Run = op
	in, err := st.runInstruction(c, op)
	if err != nil {
		return err
	}
	observes := cache.ObservesRunShell
	if !c.PrependShell {
		// Exec form: SHELL is not used. (A #! heredoc still is: like
		// BuildKit, it runs as SHELL + the script's path.)
		observes = cache.ObservesRunExec
	}
	step.keyInstruction(in, observes)
	st.commit(step, "RUN "+runCommandString(args, st.args, st.env), true)
	return nil
}

// runInstruction is RUN's key instruction (docs/cache.md §4): the command
// as written (shell form) or its argv (exec form), heredoc bodies, and the
// flags that change what it does: --mount, --security=insecure and the
// effective network when it is not the host's (RUN --network, else the
// build's default).
func (st *stageState) runInstruction(c *instructions.RunCommand, op *RunOp) (cache.Instruction, error) {
	in := cache.Instruction{Keyword: "RUN"}
	for _, m := range op.Mounts {
		b, err := json.Marshal(m)
		if err != nil {
			return in, fmt.Errorf("encode mount: %w", err)
		}
		in.Flags = append(in.Flags, cache.Flag{Name: "mount", Value: string(b)})
	}
	if n := effectiveNetwork(op.Network, st.p.req.Network); n != "host" {
		in.Flags = append(in.Flags, cache.Flag{Name: "network", Value: n})
	}
	if op.Security != instructions.SecuritySandbox {
		in.Flags = append(in.Flags, cache.Flag{Name: "security", Value: op.Security})
	}
	if !c.PrependShell {
		in.Exec = slices.Clone(c.CmdLine)
		return in, nil
	}
	in.Shell = strings.Join(c.CmdLine, " ")
	for _, f := range c.Files {
		body := f.Data
		if f.Chomp {
			body = parser.ChompHeredocContent(body)
		}
		in.Heredocs = append(in.Heredocs, cache.Heredoc{Name: f.Name, Body: body})
	}
	return in, nil
}

// effectiveNetwork is the network a RUN gets: its --network, else the
// build's default; "" and "default" mean the host's.
func effectiveNetwork(step, build string) string {
	n := step
	if n == "" || n == instructions.NetworkDefault {
		n = build
	}
	if n == "" || n == instructions.NetworkDefault {
		n = instructions.NetworkHost
	}
	return n
}

// heredocDir is where a RUN finds its #! heredoc scripts. BuildKit mounts
// them under /dev/pipes; minibuild's sandbox owns /dev, so the builder
// writes them into the step's upper directory here and removes the
// directory again before the upper becomes a layer.
const heredocDir = "/.minibuild-heredocs"

// runArgs resolves heredocs like BuildKit: one heredoc starting with "#!"
// becomes a script file run directly; one plain heredoc is the command
// text; anything else is handed to the shell as a reconstituted script.
func runArgs(c *instructions.RunCommand) ([]string, []InlineFile, error) {
	args := c.CmdLine
	if len(c.Files) == 0 {
		return args, nil, nil
	}
	if len(args) != 1 || !c.PrependShell {
		return nil, nil, fmt.Errorf("parsing produced an invalid run command: %v", args)
	}
	if parser.MustParseHeredoc(args[0]) == nil {
		var b strings.Builder
		b.WriteString(args[0])
		for _, f := range c.Files {
			b.WriteByte('\n')
			b.WriteString(f.Data)
			b.WriteString(f.Name)
		}
		return []string{b.String()}, nil, nil
	}
	f := c.Files[0]
	data := f.Data
	if f.Chomp {
		data = parser.ChompHeredocContent(data)
	}
	if !strings.HasPrefix(data, "#!") {
		return []string{data}, nil, nil
	}
	if f.Name == "" || f.Name == "." || f.Name == ".." || strings.Contains(f.Name, "/") {
		return nil, nil, fmt.Errorf("heredoc name %q: not usable as a file name", f.Name)
	}
	p := path.Join(heredocDir, f.Name)
	return []string{p}, []InlineFile{{Path: p, Data: data, Mode: 0o755}}, nil
}

// runCommandString is BuildKit's history line for RUN: "|N K=V … argv",
// listing the ARGs in scope so two builds with different ARG values do not
// share a history.
func runCommandString(args []string, declared []stageArg, env *scope) string {
	var kv []string
	index := map[string]int{}
	for _, a := range declared {
		v, ok := env.Get(a.key)
		if !ok && a.value != nil {
			v = *a.value
		}
		if i, seen := index[a.key]; seen {
			kv[i] = a.key + "=" + v
			continue
		}
		index[a.key] = len(kv)
		kv = append(kv, a.key+"="+v)
	}
	if len(kv) > 0 {
		kv = append([]string{fmt.Sprintf("|%d", len(kv))}, kv...)
	}
	return strings.Join(append(kv, args...), " ")
}

// proxyEnv is the predefined proxy args given with --build-arg that the
// Dockerfile does not declare, in both letter cases like BuildKit's
// llb.ProxyEnv.
func (st *stageState) proxyEnv() []string {
	keys := make([]string, 0, len(st.p.req.BuildArgs))
	for k := range st.p.req.BuildArgs {
		if isProxyArg(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	values := map[string]string{}
	for _, k := range keys {
		values[strings.ToUpper(k)] = st.p.req.BuildArgs[k]
	}
	var out []string
	for _, up := range []string{"HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY"} {
		v, ok := values[up]
		if !ok {
			continue
		}
		for _, k := range []string{up, strings.ToLower(up)} {
			if _, declared := st.env.Get(k); !declared {
				out = append(out, k+"="+v)
			}
		}
	}
	return out
}
