package cache

import (
	"cmp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Instruction is a filesystem instruction in the structured form the
// builder has after parsing and expansion. [Instruction.String] renders the
// normalized text that goes into [Parts].Instruction, so every builder
// code path spells an instruction the same way.
type Instruction struct {
	// Keyword is the instruction name; it is upper-cased.
	Keyword string
	// Flags are the instruction's flags after expansion, including values
	// that apply build-wide (a build's --network=none is RUN
	// --network=none). Flags at their default value should be left out so
	// that spelling a default does not change the key.
	Flags []Flag
	// Exactly one of Shell, Exec and Args is used.

	// Shell is a shell-form command, written verbatim (the shell expands
	// it at run time, so the builder does not).
	Shell string
	// Exec is an exec-form argv, written as a JSON array.
	Exec []string
	// Args are expanded arguments (COPY/ADD sources and destination,
	// WORKDIR's path), each written bare when plain, else JSON-quoted.
	Args []string
	// Heredocs are the here-documents in the order they appear, with their
	// bodies as the step uses them (chomped, and expanded where Docker
	// expands them).
	Heredocs []Heredoc
}

// Flag is one instruction flag; Name has no leading dashes.
type Flag struct {
	Name  string
	Value string
}

// Heredoc is one here-document.
type Heredoc struct {
	Name string // the delimiter word
	Body string
}

// String is the normalized instruction text (docs/cache.md, "Instruction
// text"): KEYWORD, flags sorted as --name=value, then the command or
// arguments, then each heredoc as a line "<<NAME", its body and NAME.
func (in Instruction) String() string {
	var b strings.Builder
	b.WriteString(strings.ToUpper(in.Keyword))
	flags := slices.Clone(in.Flags)
	slices.SortFunc(flags, func(x, y Flag) int {
		return cmp.Or(cmp.Compare(x.Name, y.Name), cmp.Compare(x.Value, y.Value))
	})
	for _, f := range flags {
		b.WriteString(" --")
		b.WriteString(f.Name)
		b.WriteByte('=')
		b.WriteString(quoteWord(f.Value, false))
	}
	switch {
	case in.Exec != nil:
		b.WriteByte(' ')
		b.WriteString(jsonStrings(in.Exec))
	case in.Args != nil:
		for _, a := range in.Args {
			b.WriteByte(' ')
			b.WriteString(quoteWord(a, true))
		}
	default:
		if in.Shell != "" {
			b.WriteByte(' ')
			b.WriteString(in.Shell)
		}
	}
	for _, h := range in.Heredocs {
		b.WriteString("\n<<")
		b.WriteString(h.Name)
		b.WriteByte('\n')
		b.WriteString(h.Body)
		b.WriteString(h.Name)
	}
	return b.String()
}

// quoteWord writes s bare when that cannot be confused with other syntax:
// non-empty, valid UTF-8, no space, control character, quote or
// backslash, and (for arguments) not starting like a flag or an exec
// array. Otherwise it is a canonical JSON string.
func quoteWord(s string, arg bool) string {
	plain := s != "" && utf8.ValidString(s)
	if arg && (strings.HasPrefix(s, "-") || strings.HasPrefix(s, "[")) {
		plain = false
	}
	for i := 0; plain && i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '"' || c == '\\' {
			plain = false
		}
	}
	if plain {
		return s
	}
	return string(appendCanonString(nil, s))
}
