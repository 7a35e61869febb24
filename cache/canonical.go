package cache

import (
	"unicode/utf8"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// canonWriter writes the canonical JSON of docs/cache.md: no whitespace,
// object members in the order the code writes them, every member always
// present. It exists (instead of encoding/json) so the bytes are fixed by
// this file alone, and so strings that are not valid UTF-8 still hash
// injectively: encoding/json would turn every invalid byte into U+FFFD and
// two different instructions into one key.
type canonWriter struct {
	b []byte
	// first[i] is true while the i-th open object or array has no member.
	first []bool
}

const hexDigits = "0123456789abcdef"

func (w *canonWriter) open(c byte) *canonWriter {
	w.b = append(w.b, c)
	w.first = append(w.first, true)
	return w
}

func (w *canonWriter) close(c byte) *canonWriter {
	w.b = append(w.b, c)
	w.first = w.first[:len(w.first)-1]
	return w
}

func (w *canonWriter) beginObject() *canonWriter { return w.open('{') }
func (w *canonWriter) endObject() *canonWriter   { return w.close('}') }
func (w *canonWriter) beginArray() *canonWriter  { return w.open('[') }
func (w *canonWriter) endArray() *canonWriter    { return w.close(']') }

// sep writes the comma before every member but the first.
func (w *canonWriter) sep() {
	top := len(w.first) - 1
	if !w.first[top] {
		w.b = append(w.b, ',')
	}
	w.first[top] = false
}

// key starts an object member.
func (w *canonWriter) key(k string) *canonWriter {
	w.sep()
	w.b = appendCanonString(w.b, k)
	w.b = append(w.b, ':')
	return w
}

// elem starts an array element.
func (w *canonWriter) elem() *canonWriter {
	w.sep()
	return w
}

func (w *canonWriter) str(s string) *canonWriter {
	w.b = appendCanonString(w.b, s)
	return w
}

// hash writes "algorithm:hex", or "" for the zero hash.
func (w *canonWriter) hash(h v1.Hash) *canonWriter {
	if h == (v1.Hash{}) {
		return w.str("")
	}
	return w.str(h.String())
}

func (w *canonWriter) parent(p Parent) *canonWriter {
	w.beginObject()
	w.key("kind").str(string(p.Kind))
	w.key("digest").hash(p.Digest) // Name is not keyed (see Parent)
	return w.endObject()
}

// appendCanonString appends s as a JSON string: '"' and '\' escaped with a
// backslash, bytes below 0x20 as \u00XX, each byte of an invalid UTF-8
// sequence as \u00XX (0x80-0xff), everything else as is. Valid runes
// U+0080-U+00FF are written raw, so the escape form is never ambiguous.
func appendCanonString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			i++
			continue
		}
		b = append(b, s[i:i+size]...)
		i += size
	}
	return append(b, '"')
}
