package builder

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
)

// Chmod is a parsed COPY/ADD --chmod: an octal mode (0 to 07777), or a
// symbolic one as chmod(1) describes it ("u+x,g-w", "go=u-w", "a+X"),
// evaluated with a zero umask like BuildKit (which uses BSD setmode).
// Symbolic modes apply to directories as well as files; X adds execute
// permission only to directories and files already executable by someone.
type Chmod struct {
	text  string
	octal bool
	bits  uint32    // octal form
	cmds  []modeCmd // symbolic form, BSD setmode's command list
}

// Mode bits as chmod(1) numbers them.
const (
	modeSetuid  = 0o4000
	modeSetgid  = 0o2000
	modeSticky  = 0o1000
	modeRWXU    = 0o700
	modeRWXG    = 0o070
	modeRWXO    = 0o007
	modeR       = 0o444
	modeW       = 0o222
	modeX       = 0o111
	modeAllBits = modeSetuid | modeSetgid | modeRWXU | modeRWXG | modeRWXO
)

// modeCmd is one operation of a symbolic mode: '+' and '-' set or clear
// bits, 'X' and 'x' set or clear them for directories and files already
// executable (judged on the mode before the change, like BSD setmode);
// 'u', 'g', 'o' copy one class's bits to the classes in who.
type modeCmd struct {
	op   byte
	who  uint32 // 'u'/'g'/'o': target classes and bit mask
	bits uint32
	set  bool // 'u'/'g'/'o': copy in ('+' or '=')
	clr  bool // 'u'/'g'/'o': clear first ('-' or '=')
}

// ParseChmod parses a --chmod value.
func ParseChmod(s string) (*Chmod, error) {
	nonOctal := fmt.Errorf("invalid chmod parameter: '%s'. it should be octal string and between 0 and 07777", s)
	if v, err := strconv.ParseUint(s, 8, 32); err == nil {
		if v > 0o7777 {
			return nil, nonOctal
		}
		return &Chmod{text: s, octal: true, bits: uint32(v)}, nil
	}
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return nil, nonOctal
	}
	cmds, err := parseSymbolic(s)
	if err != nil {
		return nil, fmt.Errorf("invalid chmod parameter: '%s': %w", s, err)
	}
	return &Chmod{text: s, cmds: cmds}, nil
}

// String is the value as written.
func (c *Chmod) String() string { return c.text }

// MarshalText encodes the value as written.
func (c *Chmod) MarshalText() ([]byte, error) { return []byte(c.text), nil }

// Octal returns the permission bits of an octal --chmod (BuildKit also
// creates missing parent directories with them); ok is false for a
// symbolic mode.
func (c *Chmod) Octal() (perm fs.FileMode, ok bool) {
	return fs.FileMode(c.bits & 0o777), c.octal
}

// Apply returns mode m (type bits kept) changed by c.
func (c *Chmod) Apply(m fs.FileMode) fs.FileMode {
	old := toBits(m)
	n := old
	if c.octal {
		n = c.bits & (modeAllBits | modeSticky)
	}
	for _, cmd := range c.cmds {
		switch cmd.op {
		case '+':
			n |= cmd.bits
		case '-':
			n &^= cmd.bits
		case 'X':
			if old&modeX != 0 || m.IsDir() {
				n |= cmd.bits
			}
		case 'x':
			if old&modeX != 0 || m.IsDir() {
				n &^= cmd.bits
			}
		case 'u':
			n = copyClass(n, cmd, n&modeRWXU>>6)
		case 'g':
			n = copyClass(n, cmd, n&modeRWXG>>3)
		case 'o':
			n = copyClass(n, cmd, n&modeRWXO)
		}
	}
	return fromBits(m, n)
}

// copyClass applies "who=u", "who+g", "who-o": value is the source class's
// rwx bits (0-7).
func copyClass(n uint32, c modeCmd, value uint32) uint32 {
	shifts := []struct {
		class uint32
		shift uint
	}{{modeRWXU, 6}, {modeRWXG, 3}, {modeRWXO, 0}}
	for _, s := range shifts {
		if c.who&s.class == 0 {
			continue
		}
		if c.clr {
			clear := value
			if c.set {
				clear = 0o7
			}
			n &^= clear << s.shift & c.bits
		}
		if c.set {
			n |= value << s.shift & c.bits
		}
	}
	return n
}

func toBits(m fs.FileMode) uint32 {
	b := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		b |= modeSetuid
	}
	if m&fs.ModeSetgid != 0 {
		b |= modeSetgid
	}
	if m&fs.ModeSticky != 0 {
		b |= modeSticky
	}
	return b
}

func fromBits(old fs.FileMode, b uint32) fs.FileMode {
	m := old &^ (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	m |= fs.FileMode(b & 0o777)
	if b&modeSetuid != 0 {
		m |= fs.ModeSetuid
	}
	if b&modeSetgid != 0 {
		m |= fs.ModeSetgid
	}
	if b&modeSticky != 0 {
		m |= fs.ModeSticky
	}
	return m
}

var errModeSyntax = errors.New("invalid symbolic mode")

// parseSymbolic follows BSD setmode(3) with a zero umask: clauses
// "[ugoa]*([-+=]([rwxXst]*|[ugo]))+" separated by commas.
func parseSymbolic(s string) ([]modeCmd, error) {
	var cmds []modeCmd
	for {
		var who uint32
	whoLoop:
		for ; len(s) > 0; s = s[1:] {
			switch s[0] {
			case 'a':
				who |= modeAllBits
			case 'u':
				who |= modeSetuid | modeRWXU
			case 'g':
				who |= modeSetgid | modeRWXG
			case 'o':
				who |= modeRWXO
			default:
				break whoLoop
			}
		}
		if len(s) == 0 {
			return nil, errModeSyntax
		}
		for {
			op := s[0]
			if op != '+' && op != '-' && op != '=' {
				return nil, errModeSyntax
			}
			var err error
			if cmds, s, err = parseActions(cmds, who, op, s[1:]); err != nil {
				return nil, err
			}
			if s == "" {
				return compressModeCmds(cmds), nil
			}
			if s[0] == ',' {
				s = s[1:]
				break
			}
		}
	}
}

// parseActions reads the permission letters after one operator.
func parseActions(cmds []modeCmd, who uint32, op byte, s string) ([]modeCmd, string, error) {
	var perm, permX uint32
	equalDone := false
	whoT := who &^ modeSticky
	for ; ; s = s[1:] {
		var b byte
		if len(s) > 0 {
			b = s[0]
		}
		switch b {
		case 'r':
			perm |= modeR
		case 'w':
			perm |= modeW
		case 'x':
			perm |= modeX
		case 'X':
			// POSIX.1-2024 and Linux accept X with every operator (BSD
			// only with '+'); BuildKit follows Linux since moby/buildkit#5835.
			permX = modeX
		case 's':
			if whoT == 0 || whoT&^modeRWXO != 0 {
				perm |= modeSetuid | modeSetgid
			}
		case 't':
			if whoT == 0 || whoT&^modeRWXO != 0 {
				whoT |= modeSticky
				perm |= modeSticky
			}
		case 'u', 'g', 'o':
			if perm != 0 {
				cmds = addModeCmd(cmds, op, whoT, perm)
				perm = 0
			}
			if op == '=' {
				equalDone = true
			}
			if permX != 0 {
				cmds = addXCmd(cmds, op, whoT, permX)
				permX = 0
			}
			cmds = append(cmds, copyCmd(b, whoT, op))
		default:
			if perm != 0 || (op == '=' && !equalDone) {
				cmds = addModeCmd(cmds, op, whoT, perm)
			}
			if permX != 0 {
				cmds = addXCmd(cmds, op, whoT, permX)
			}
			return cmds, s, nil
		}
	}
}

func addModeCmd(cmds []modeCmd, op byte, who, bits uint32) []modeCmd {
	mask := func(b uint32) uint32 {
		if who != 0 {
			return who & b
		}
		return b // zero umask: every bit
	}
	if op == '=' {
		clear := uint32(modeAllBits)
		if who != 0 {
			clear = who
		}
		cmds = append(cmds, modeCmd{op: '-', bits: clear})
		op = '+'
	}
	return append(cmds, modeCmd{op: op, bits: mask(bits)})
}

// addXCmd adds a conditional execute bit: set for '+' and '=', cleared for
// '-' (op 'x' below), if the entry is a directory or already executable.
func addXCmd(cmds []modeCmd, op byte, who, bits uint32) []modeCmd {
	if op != '-' {
		return addModeCmd(cmds, 'X', who, bits)
	}
	if who != 0 {
		bits &= who
	}
	return append(cmds, modeCmd{op: 'x', bits: bits})
}

func copyCmd(from byte, who uint32, op byte) modeCmd {
	c := modeCmd{op: from, who: modeRWXU | modeRWXG | modeRWXO, bits: ^uint32(0)}
	if who != 0 {
		c.who = who & (modeRWXU | modeRWXG | modeRWXO)
	}
	switch op {
	case '+':
		c.set = true
	case '-':
		c.clr = true
	case '=':
		c.set, c.clr = true, true
	}
	return c
}

// compressModeCmds merges each run of '+', '-' and 'X' commands into at
// most one of each, as setmode does; the merge decides how a later '+'
// interacts with an earlier 'X' ("a+X,a+x").
func compressModeCmds(in []modeCmd) []modeCmd {
	var out []modeCmd
	for i := 0; i < len(in); {
		if c := in[i]; c.op != '+' && c.op != '-' && c.op != 'X' {
			out = append(out, c)
			i++
			continue
		}
		var set, clr, x uint32
		for ; i < len(in); i++ {
			c := in[i]
			switch c.op {
			case '-':
				clr |= c.bits
				set &^= c.bits
				x &^= c.bits
				continue
			case '+':
				set |= c.bits
				clr &^= c.bits
				x &^= c.bits
				continue
			case 'X':
				x |= c.bits &^ set
				continue
			}
			break
		}
		if clr != 0 {
			out = append(out, modeCmd{op: '-', bits: clr})
		}
		if set != 0 {
			out = append(out, modeCmd{op: '+', bits: set})
		}
		if x != 0 {
			out = append(out, modeCmd{op: 'X', bits: x})
		}
	}
	return out
}
