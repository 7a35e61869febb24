package builder

import (
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// scope is an ordered set of variables: the environment words are expanded
// against. A stage's scope starts as its base image's ENV and receives every
// ENV and every ARG value, in Dockerfile order, later definitions replacing
// earlier ones (BuildKit keeps one such list per stage, llb.State's env).
type scope struct {
	keys []string
	vals map[string]string
}

var _ shell.EnvGetter = (*scope)(nil)

func newScope() *scope { return &scope{vals: map[string]string{}} }

// scopeFromEnv builds a scope from "KEY=VALUE" strings.
func scopeFromEnv(env []string) *scope {
	s := newScope()
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		s.set(k, v)
	}
	return s
}

// Get implements shell.EnvGetter.
func (s *scope) Get(key string) (string, bool) {
	v, ok := s.vals[key]
	return v, ok
}

// Keys implements shell.EnvGetter; keys are in definition order.
func (s *scope) Keys() []string { return slices.Clone(s.keys) }

func (s *scope) set(k, v string) {
	if _, ok := s.vals[k]; !ok {
		s.keys = append(s.keys, k)
	}
	s.vals[k] = v
}

func (s *scope) clone() *scope {
	c := &scope{keys: slices.Clone(s.keys), vals: make(map[string]string, len(s.vals))}
	for k, v := range s.vals {
		c.vals[k] = v
	}
	return c
}

// environ is the scope as "KEY=VALUE" in definition order.
func (s *scope) environ() []string {
	out := make([]string, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, k+"="+s.vals[k])
	}
	return out
}

// setEnv replaces k in a "KEY=VALUE" list or appends it, keeping the
// position of an existing key (what Docker does to the image config).
func setEnv(env []string, k, v string) []string {
	for i, kv := range env {
		if key, _, _ := strings.Cut(kv, "="); shell.EqualEnvKeys(key, k) {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// isProxyArg reports Docker's predefined ARGs: usable by RUN without an
// ARG instruction, and kept out of history and the cache key unless the
// Dockerfile declares them.
func isProxyArg(k string) bool {
	switch k {
	case "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
		"FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy",
		"ALL_PROXY", "all_proxy":
		return true
	}
	return false
}
