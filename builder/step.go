package builder

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"minibuild/cache"
)

// Step is one instruction of a stage, planned. Config-only instructions
// (ENV, LABEL, CMD, …) have no operation: their effect is already in
// Stage.Config and their History entry is empty_layer. RUN, COPY, ADD and
// WORKDIR (other than "/") carry the filesystem operation to perform.
type Step struct {
	Stage *Stage `json:"-"`
	// Index is the 1-based position among the stage's steps, Total their
	// number.
	Index, Total int
	Location     Location
	// Original is the instruction as written, continuation lines joined.
	Original string
	// Display is the instruction as BuildKit shows it in progress output:
	// variables expanded, instruction name uppercased.
	Display string
	// Instruction is the canonical form after ARG/ENV expansion: name,
	// flags sorted and normalized, arguments quoted where needed, heredoc
	// bodies appended. For filesystem steps it is the "instruction" part
	// of the cache key, rendered by cache.Instruction (docs/cache.md §4).
	Instruction string
	// Env is what the step can observe, the "env" part of the cache key.
	Env StepEnv
	// OnBuild marks a trigger inherited from the base image's ONBUILD.
	OnBuild bool
	// History is the entry this step adds to the image config (also
	// present in Stage.Config.History). EmptyLayer is true for
	// config-only steps.
	History v1.History

	Run     *RunOp     // RUN
	Copy    *CopyOp    // COPY and ADD
	Workdir *WorkdirOp // WORKDIR that creates a directory

	// observes is what of Env the step's key includes (docs/cache.md §5).
	observes cache.Observes
}

// keyInstruction sets the step's key instruction and what it observes.
func (s *Step) keyInstruction(in cache.Instruction, o cache.Observes) {
	s.Instruction = in.String()
	s.observes = o
}

// Layer reports whether the step changes the filesystem.
func (s *Step) Layer() bool {
	return s.Run != nil || s.Copy != nil || s.Workdir != nil
}

// StepEnv is the state a step observes, before it runs.
type StepEnv struct {
	// Env holds the image ENV and the ARG values in scope, "KEY=VALUE",
	// sorted by key. Predefined proxy args that the Dockerfile does not
	// declare are left out (Docker keeps them out of history and cache).
	Env []string
	// Config is the image config's Env at this point ("KEY=VALUE", in
	// config order) and Args the declared ARGs in scope that have a
	// value: the ENV and ARG parts of the cache key, kept apart so an
	// explanation can say which one changed.
	Config     []string
	Args       map[string]string
	WorkingDir string
	User       string
	Shell      []string // SHELL, or nil for the default /bin/sh -c
}

// RunOp is a RUN instruction ready to execute.
type RunOp struct {
	// Args is the argv: SHELL (or /bin/sh -c) prepended for the shell
	// form, heredocs resolved like BuildKit.
	Args []string
	// Env is the process environment: image ENV, ARG values in scope and
	// the predefined proxy args given with --build-arg.
	Env        []string
	WorkingDir string
	User       string
	// Network is "default", "none" or "host" (RUN --network).
	Network string
	// Security is "sandbox" or "insecure" (RUN --security).
	Security string
	Mounts   []*instructions.Mount // RUN --mount, expanded
	// Files are inline scripts (a heredoc with a #! line) to make
	// available read-only at their Path while the command runs.
	Files []InlineFile
}

// InlineFile is a file whose content comes from the Dockerfile (heredocs).
type InlineFile struct {
	Path string // COPY: the heredoc name; RUN: absolute path in the container
	Data string
	Mode uint32 // permission bits
}

// CopyFromKind says where COPY/ADD reads its sources.
type CopyFromKind int

// Where COPY/ADD sources come from.
const (
	// FromContext is the main build context (no --from).
	FromContext CopyFromKind = iota
	// FromStageResult is another stage's result filesystem.
	FromStageResult
	// FromImageRoot is an image's filesystem (--from=<image>, or a
	// --build-context of an image form).
	FromImageRoot
	// FromNamedDir is a --build-context directory.
	FromNamedDir
)

// CopyFrom is the source of a COPY --from.
type CopyFrom struct {
	Kind  CopyFromKind
	Ref   string     // the --from value as written
	Stage *Stage     `json:"-"` // FromStageResult
	Image *BaseImage // FromImageRoot
	Dir   string     // FromNamedDir
}

// CopyOp is the filesystem side of a COPY or ADD, planned.
type CopyOp struct {
	Add  bool
	From CopyFrom
	// Sources are the source arguments after expansion, in order: paths
	// or patterns relative to the source root, or http(s) URLs (ADD).
	Sources []string
	// Heredocs are inline sources (COPY <<EOF), copied after Sources.
	Heredocs []InlineFile
	// Dest is the absolute destination; a trailing "/" (or "/.") means
	// "into this directory", as in the Dockerfile.
	Dest string
	// Chown is the --chown value after expansion ("user[:group]"); "" keeps
	// the default owner (0:0 for the build context, the source owner for
	// --from).
	Chown string
	// Chmod is the parsed --chmod, or nil.
	Chmod *Chmod
	// Link, Parents and Excludes are --link, --parents and --exclude.
	Link     bool
	Parents  bool
	Excludes []string
	// Checksum is ADD --checksum ("sha256:…") for a URL source.
	Checksum string
	// Unpack says whether local archives are extracted (ADD: default true
	// for local sources, false for URLs, set by --unpack).
	Unpack bool
	// UnpackURL says whether a downloaded archive is extracted (ADD
	// --unpack=true with a URL source).
	UnpackURL bool
}

// WorkdirOp creates the working directory (mkdir -p), owned by User like
// BuildKit does.
type WorkdirOp struct {
	Path string // absolute
	User string // USER at this point ("" = root), resolved in the image
}

// canonical builds Step.Instruction: name, then flags sorted by name
// ("--name" for true booleans), then arguments quoted where needed.
type canonical struct {
	name  string
	flags []string
	args  []string
	tail  []string // heredoc bodies, each "<<NAME\n<body>NAME"
}

func (c *canonical) flag(name, value string) {
	if value != "" {
		c.flags = append(c.flags, "--"+name+"="+quoteArg(value))
	}
}

func (c *canonical) jsonArg(v any) {
	b, _ := json.Marshal(v) // strings and string slices never fail
	c.args = append(c.args, string(b))
}

func (c *canonical) String() string {
	sort.Strings(c.flags)
	parts := append([]string{c.name}, c.flags...)
	parts = append(parts, c.args...)
	s := strings.Join(parts, " ")
	for _, t := range c.tail {
		s += "\n" + t
	}
	return s
}

// quoteArg quotes a word when it could be misread: empty, containing
// whitespace, quotes or backslashes, or looking like a flag or heredoc.
func quoteArg(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\r\n\"'\\") || strings.HasPrefix(s, "--") || strings.HasPrefix(s, "<<") {
		return strconv.Quote(s)
	}
	return s
}

func quoteArgs(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = quoteArg(s)
	}
	return out
}

func joinArgs(ss []string) string { return strings.Join(ss, " ") }
