package inspect

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// EnvAction says where a variable's value after a rebase comes from.
type EnvAction string

// How [PlanRebase] decides each variable (old base, new base, image).
const (
	// EnvInherited: the image has the old base's value and did not set
	// it; it takes the new base's.
	EnvInherited EnvAction = "inherited"
	// EnvImage: the image set the variable; its value stays.
	EnvImage EnvAction = "image"
	// EnvExtended: the image extended the old base's value
	// (PATH=$PATH:/x, PATH=/x:$PATH); the same additions are made to the
	// new base's value.
	EnvExtended EnvAction = "extended"
	// EnvAdded: only the new base has the variable.
	EnvAdded EnvAction = "added"
	// EnvDropped: the image inherited the variable and the new base no
	// longer has it (or the image removed it).
	EnvDropped EnvAction = "dropped"
)

// EnvDecision is how one variable is reconciled. Values are nil when the
// variable is unset there.
type EnvDecision struct {
	Name    string    `json:"name"`
	Action  EnvAction `json:"action"`
	OldBase *string   `json:"old_base"`
	NewBase *string   `json:"new_base"`
	Image   *string   `json:"image"`
	Result  *string   `json:"result"`
}

// Changed reports whether the rebase changes the image's value.
func (d EnvDecision) Changed() bool { return !equalPtr(d.Image, d.Result) }

// FieldDecision is a config field (or one key of a map field, as in
// "Labels[version]") that the image inherited unchanged from the old base
// and that takes the new base's value. Values are JSON.
type FieldDecision struct {
	Field  string `json:"field"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// configMerge is the reconciled container config with the decisions made.
type configMerge struct {
	config   v1.Config
	env      []EnvDecision
	fields   []FieldDecision
	warnings []string
}

// mergeConfig reconciles the image's container config with a new base:
// ENV variable by variable, Labels, ExposedPorts and Volumes key by key,
// every other field as a whole. Something the image set itself (its value
// differs from the old base's, or one of its own history entries sets it)
// keeps the image's value; something it inherited takes the new base's.
// OnBuild is always the image's: a build runs the base's triggers and
// does not inherit them.
func mergeConfig(oldBase, newBase, img *v1.Config, own []v1.History) configMerge {
	set := ownSettings(own)
	m := configMerge{config: *img.DeepCopy()}
	m.config.Env, m.env = mergeEnv(oldBase.Env, newBase.Env, img.Env, set.env)
	m.warnings = derivedEnvWarnings(m.env)
	for _, f := range scalarFields {
		if set.fields[f.name] || !sameJSON(f.get(img), f.get(oldBase)) {
			continue
		}
		f.copy(&m.config, newBase)
		if !sameJSON(f.get(img), f.get(newBase)) {
			m.fields = append(m.fields, FieldDecision{Field: f.name, Before: toJSON(f.get(img)), After: toJSON(f.get(newBase))})
		}
	}
	var ds []FieldDecision
	m.config.Labels, ds = mergeKeys("Labels", oldBase.Labels, newBase.Labels, img.Labels, set.labels)
	m.fields = append(m.fields, ds...)
	m.config.ExposedPorts, ds = mergeKeys("ExposedPorts", oldBase.ExposedPorts, newBase.ExposedPorts, img.ExposedPorts, nil)
	m.fields = append(m.fields, ds...)
	m.config.Volumes, ds = mergeKeys("Volumes", oldBase.Volumes, newBase.Volumes, img.Volumes, nil)
	m.fields = append(m.fields, ds...)
	if len(newBase.OnBuild) > 0 {
		m.warnings = append(m.warnings, fmt.Sprintf("the new base has ONBUILD triggers (%s), which a rebuild would run and a rebase does not",
			strings.Join(newBase.OnBuild, "; ")))
	}
	return m
}

// scalarField is a config field reconciled as a whole.
type scalarField struct {
	name string
	get  func(*v1.Config) any
	copy func(dst, src *v1.Config)
}

var scalarFields = []scalarField{
	{"Cmd", func(c *v1.Config) any { return c.Cmd }, func(d, s *v1.Config) { d.Cmd = slices.Clone(s.Cmd) }},
	{"Entrypoint", func(c *v1.Config) any { return c.Entrypoint }, func(d, s *v1.Config) { d.Entrypoint = slices.Clone(s.Entrypoint) }},
	{"ArgsEscaped", func(c *v1.Config) any { return c.ArgsEscaped }, func(d, s *v1.Config) { d.ArgsEscaped = s.ArgsEscaped }},
	{"WorkingDir", func(c *v1.Config) any { return c.WorkingDir }, func(d, s *v1.Config) { d.WorkingDir = s.WorkingDir }},
	{"User", func(c *v1.Config) any { return c.User }, func(d, s *v1.Config) { d.User = s.User }},
	{"StopSignal", func(c *v1.Config) any { return c.StopSignal }, func(d, s *v1.Config) { d.StopSignal = s.StopSignal }},
	{"Healthcheck", func(c *v1.Config) any { return c.Healthcheck }, func(d, s *v1.Config) { d.Healthcheck = s.Healthcheck.DeepCopy() }},
	{"Shell", func(c *v1.Config) any { return c.Shell }, func(d, s *v1.Config) { d.Shell = slices.Clone(s.Shell) }},
	{"Domainname", func(c *v1.Config) any { return c.Domainname }, func(d, s *v1.Config) { d.Domainname = s.Domainname }},
	{"Hostname", func(c *v1.Config) any { return c.Hostname }, func(d, s *v1.Config) { d.Hostname = s.Hostname }},
}

// sameJSON compares config values as their JSON (so a nil and an empty
// slice are the same, as omitempty writes them).
func sameJSON(a, b any) bool { return toJSON(a) == toJSON(b) }

func toJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// settings is what the image's own history entries set.
type settings struct {
	fields map[string]bool // scalar field names
	env    map[string]bool
	labels map[string]bool
}

var (
	envKeyRE   = regexp.MustCompile(`(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=`)
	labelKeyRE = regexp.MustCompile(`(?:^|\s)"?([^\s="]+)"?=`)
)

// ownSettings reads the image's own history entries ("ENV A=1 B=2",
// `CMD ["x"]`, …) for what they set, so that a value the image set to the
// base's value on purpose is kept like any other.
func ownSettings(own []v1.History) settings {
	s := settings{fields: map[string]bool{}, env: map[string]bool{}, labels: map[string]bool{}}
	for _, h := range own {
		kw, rest, _ := strings.Cut(Instruction(h.CreatedBy), " ")
		switch strings.ToUpper(kw) {
		case "CMD":
			s.fields["Cmd"], s.fields["ArgsEscaped"] = true, true
		case "ENTRYPOINT": // also resets CMD
			s.fields["Entrypoint"], s.fields["Cmd"], s.fields["ArgsEscaped"] = true, true, true
		case "WORKDIR":
			s.fields["WorkingDir"] = true
		case "USER":
			s.fields["User"] = true
		case "STOPSIGNAL":
			s.fields["StopSignal"] = true
		case "HEALTHCHECK":
			s.fields["Healthcheck"] = true
		case "SHELL":
			s.fields["Shell"] = true
		case "ENV":
			for _, m := range envKeyRE.FindAllStringSubmatch(rest, -1) {
				s.env[m[1]] = true
			}
		case "LABEL":
			for _, m := range labelKeyRE.FindAllStringSubmatch(rest, -1) {
				s.labels[m[1]] = true
			}
		}
	}
	return s
}

// mergeKeys reconciles a map field key by key: a key the image added or
// changed (or set in its history) keeps the image's value, one it
// inherited follows the new base (including its absence there).
func mergeKeys[V any](field string, oldBase, newBase, img map[string]V, setByImage map[string]bool) (map[string]V, []FieldDecision) {
	keys := map[string]bool{}
	for _, m := range []map[string]V{oldBase, newBase, img} {
		for k := range m {
			keys[k] = true
		}
	}
	var out map[string]V
	var ds []FieldDecision
	put := func(k string, v V) {
		if out == nil {
			out = map[string]V{}
		}
		out[k] = v
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		ov, inOld := oldBase[k]
		nv, inNew := newBase[k]
		iv, inImg := img[k]
		inherited := inOld && inImg && sameJSON(ov, iv) && !setByImage[k]
		switch {
		case inherited && inNew:
			put(k, nv)
		case inherited:
		case inImg:
			put(k, iv)
		case !inOld && inNew: // the image cannot have dropped what the old base lacked
			put(k, nv)
		}
		if inherited && !(inNew && sameJSON(nv, iv)) {
			d := FieldDecision{Field: field + "[" + k + "]", Before: toJSON(iv), After: "null"}
			if inNew {
				d.After = toJSON(nv)
			}
			ds = append(ds, d)
		}
		if !inOld && !inImg && inNew {
			ds = append(ds, FieldDecision{Field: field + "[" + k + "]", Before: "null", After: toJSON(nv)})
		}
	}
	return out, ds
}

// envList is an ordered KEY=value list.
type envList struct {
	keys []string
	vals map[string]string
}

func parseEnv(env []string) envList {
	l := envList{vals: map[string]string{}}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := l.vals[k]; !dup {
			l.keys = append(l.keys, k)
		}
		l.vals[k] = v
	}
	return l
}

func (l envList) get(k string) *string {
	v, ok := l.vals[k]
	if !ok {
		return nil
	}
	return &v
}

// mergeEnv reconciles ENV three ways. The result lists the new base's
// variables in its order, then the image's others in the image's order:
// the order a rebuild on the new base gives, since an ENV instruction
// replaces a variable in place and appends a new one.
func mergeEnv(oldEnv, newEnv, imgEnv []string, setByImage map[string]bool) ([]string, []EnvDecision) {
	o, n, im := parseEnv(oldEnv), parseEnv(newEnv), parseEnv(imgEnv)
	decide := func(k string) EnvDecision {
		d := EnvDecision{Name: k, OldBase: o.get(k), NewBase: n.get(k), Image: im.get(k)}
		d.Action, d.Result = envAction(d, setByImage[k])
		return d
	}
	var out []string
	var ds []EnvDecision
	seen := map[string]bool{}
	for _, keys := range [][]string{n.keys, im.keys, o.keys} {
		for _, k := range keys {
			if seen[k] {
				continue
			}
			seen[k] = true
			d := decide(k)
			ds = append(ds, d)
			if d.Result != nil && (n.get(k) != nil || im.get(k) != nil) {
				out = append(out, k+"="+*d.Result)
			}
		}
	}
	slices.SortStableFunc(ds, func(a, b EnvDecision) int { return strings.Compare(a.Name, b.Name) })
	return out, ds
}

// envAction decides one variable.
func envAction(d EnvDecision, setByImage bool) (EnvAction, *string) {
	switch {
	case d.Image == nil && d.OldBase == nil:
		return EnvAdded, d.NewBase
	case d.Image == nil:
		return EnvDropped, nil // the image removed it (no Dockerfile does)
	case d.OldBase == nil || setByImage && equalPtr(d.Image, d.OldBase):
		return EnvImage, d.Image
	case *d.Image == *d.OldBase:
		if d.NewBase == nil {
			return EnvDropped, nil
		}
		return EnvInherited, d.NewBase
	}
	if pre, post, ok := extension(*d.OldBase, *d.Image); ok && d.NewBase != nil {
		v := pre + *d.NewBase + post
		return EnvExtended, &v
	}
	return EnvImage, d.Image
}

// extension finds old as a colon-separated part of v: v = pre+old+post
// with pre empty or ending in ":" and post empty or starting with ":"
// (PATH=$PATH:/x, PATH=/x:$PATH, PATH=/x:$PATH:/y). An empty old is no
// part of anything.
func extension(old, v string) (pre, post string, ok bool) {
	if old == "" || old == v {
		return "", "", false
	}
	for i := 0; ; {
		j := strings.Index(v[i:], old)
		if j < 0 {
			return "", "", false
		}
		j += i
		pre, post = v[:j], v[j+len(old):]
		if (pre == "" || strings.HasSuffix(pre, ":")) && (post == "" || strings.HasPrefix(post, ":")) {
			return pre, post, true
		}
		i = j + 1
	}
}

// derivedEnvWarnings flags values the image keeps that contain the old
// base's value of a variable the new base changed (APP_JAVA=/opt/jdk17/…
// when JAVA_HOME moved from /opt/jdk17): likely made from it with $VAR,
// which only a rebuild re-expands.
func derivedEnvWarnings(ds []EnvDecision) []string {
	var out []string
	for _, kept := range ds {
		if kept.Action != EnvImage && kept.Action != EnvExtended || kept.Result == nil {
			continue
		}
		for _, moved := range ds {
			if moved.Name == kept.Name || moved.OldBase == nil || moved.NewBase == nil ||
				*moved.OldBase == *moved.NewBase || len(*moved.OldBase) < 4 || strings.Contains(*moved.OldBase, ":") {
				continue
			}
			if strings.Contains(*kept.Result, *moved.OldBase) {
				out = append(out, fmt.Sprintf("ENV %s=%s contains %s's old value %s (the new base has %s): if it was made from $%s, rebuild instead",
					kept.Name, *kept.Result, moved.Name, *moved.OldBase, *moved.NewBase, moved.Name))
			}
		}
	}
	return out
}

func equalPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
