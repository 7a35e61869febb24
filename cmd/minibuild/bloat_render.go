package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"minibuild/builder/inspect"
)

// ANSI colors of the bloat report in a terminal.
const (
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiDim    = "\x1b[2m"
	ansiReset  = "\x1b[0m"
)

// printBloat writes the report: totals, one row per layer with a bar, the
// biggest offenders and the hints.
func printBloat(w io.Writer, im *inspect.Image, r *inspect.BloatReport, st bloatStyle) error {
	name := im.Name
	if name == "" {
		name = im.Ref
	}
	fmt.Fprintf(w, "Image:       %s (%s)\n", name, shortID(im.Descriptor.Digest.Hex, false))
	fmt.Fprintf(w, "Total:       %s in %d layers\n", humanSize(r.TotalBytes), len(r.Layers))
	fmt.Fprintf(w, "Final tree:  %s\n", humanSize(r.VisibleBytes))
	fmt.Fprintf(w, "Wasted:      %s\n", st.paint(ansiRed, humanSize(r.WastedBytes), r.WastedBytes > 0))
	fmt.Fprintf(w, "Efficiency:  %s\n\n", percent(r.Efficiency))
	printLayerBars(w, r.Layers, st)
	printOffenders(w, r.Offenders, st.top)
	printHints(w, r.Layers)
	return nil
}

func (st bloatStyle) paint(color, s string, on bool) string {
	if !st.color || !on {
		return s
	}
	return color + s + ansiReset
}

// printLayerBars writes one row per layer: its bytes as a bar, the part
// that stays in the final tree full, the part later layers hide shaded.
func printLayerBars(w io.Writer, layers []inspect.LayerBloat, st bloatStyle) {
	var biggest int64
	sizeW, wastedW := len("SIZE"), len("WASTED")
	for _, l := range layers {
		biggest = max(biggest, l.Bytes)
		sizeW = max(sizeW, len(humanSize(l.Bytes)))
		wastedW = max(wastedW, len(humanSize(l.Wasted)))
	}
	numW := max(len("LAYER"), len(strconv.Itoa(len(layers))))
	barW := 20
	fixed := numW + sizeW + wastedW + 4*2
	if st.cols > 0 {
		barW = min(max((st.cols-fixed)/3, 10), 40)
	}
	instrW := 60
	if st.cols > 0 {
		instrW = max(st.cols-fixed-barW-2, 20)
	}
	fmt.Fprintf(w, "%*s  %*s  %*s  %-*s  %s\n", numW, "LAYER", sizeW, "SIZE", wastedW, "WASTED", barW, "", "INSTRUCTION")
	for _, l := range layers {
		bar := st.bar(l.Bytes-l.Hidden, l.Hidden, biggest, barW)
		instr := l.Instruction
		if instr == "" {
			instr = "(no history)"
		}
		if l.Base {
			instr += " (base)"
		}
		instr = ellipsis(truncate(instr, len(instr)), instrW)
		wasted := fmt.Sprintf("%*s", wastedW, humanSize(l.Wasted))
		fmt.Fprintf(w, "%*d  %*s  %s  %s  %s\n", numW, l.Layer, sizeW, humanSize(l.Bytes),
			st.paint(ansiRed, wasted, l.Wasted > 0), bar, strings.TrimRight(st.paint(ansiDim, instr, l.Base), " "))
	}
	full, shade := "#", "."
	if st.unicode {
		full, shade = "█", "░"
	}
	fmt.Fprintf(w, "%*s  %s bytes in the final tree   %s bytes later layers hide\n\n", numW+sizeW+wastedW+4, "", full, shade)
}

// eighths are the partial blocks, 1/8 to 7/8 of a cell.
var eighths = []string{"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"}

// bar draws kept+hidden bytes on a scale where biggest fills width cells,
// padded to width. Non-empty parts get at least a sliver.
func (st bloatStyle) bar(kept, hidden, biggest int64, width int) string {
	if biggest <= 0 {
		return strings.Repeat(" ", width)
	}
	scale := func(n int64, unit int) int {
		if n <= 0 {
			return 0
		}
		return max(1, int((n*int64(width*unit)+biggest/2)/biggest))
	}
	var b strings.Builder
	if st.unicode {
		k := scale(kept, 8)
		b.WriteString(strings.Repeat("█", k/8) + eighths[k%8])
		h := min(scale(hidden, 1), width-(k+7)/8)
		if hidden > 0 {
			h = max(h, 1)
		}
		b.WriteString(st.paint(ansiYellow, strings.Repeat("░", h), h > 0))
	} else {
		k := scale(kept, 1)
		h := min(scale(hidden, 1), max(width-k, 0))
		if hidden > 0 {
			h = max(h, 1)
		}
		b.WriteString(strings.Repeat("#", k) + strings.Repeat(".", h))
	}
	s := b.String()
	return s + strings.Repeat(" ", max(width-visibleWidth(s), 0))
}

// visibleWidth counts the cells of s, skipping ANSI color sequences.
func visibleWidth(s string) int {
	n := 0
	for i := 0; i < len(s); {
		if s[i] == 0x1b {
			j := strings.IndexByte(s[i:], 'm')
			if j < 0 {
				break
			}
			i += j + 1
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		n++
	}
	return n
}

// printOffenders lists the top paths by wasted bytes, each with what hid
// its versions: "copied up by layers 4, 6; deleted by layer 7".
func printOffenders(w io.Writer, offs []inspect.Offender, top int) {
	if len(offs) == 0 || top == 0 {
		return
	}
	fmt.Fprintln(w, "Biggest waste by path:")
	shown := offs[:min(top, len(offs))]
	sizeW, pathW := 0, 0
	for _, o := range shown {
		sizeW = max(sizeW, len(humanSize(o.Bytes)))
		pathW = max(pathW, utf8.RuneCountInString(o.Path))
	}
	pathW = min(pathW, 60)
	for _, o := range shown {
		p := ellipsis(truncate(o.Path, len(o.Path)), 60)
		fmt.Fprintf(w, "  %*s  %-*s  %s\n", sizeW, humanSize(o.Bytes), pathW, p, hiddenBy(o.Versions))
	}
	if rest := len(offs) - len(shown); rest > 0 {
		var bytes int64
		for _, o := range offs[len(shown):] {
			bytes += o.Bytes
		}
		fmt.Fprintf(w, "  … and %d more paths (%s); --top or --json lists them\n", rest, humanSize(bytes))
	}
	fmt.Fprintln(w)
}

var wasteVerbs = map[inspect.WasteKind]string{
	inspect.WasteCopiedUp:    "copied up",
	inspect.WasteDeleted:     "deleted",
	inspect.WasteOverwritten: "overwritten",
}

func hiddenBy(vs []inspect.Waste) string {
	byKind := map[inspect.WasteKind][]int{}
	var order []inspect.WasteKind
	for _, v := range vs {
		if _, ok := byKind[v.Kind]; !ok {
			order = append(order, v.Kind)
		}
		byKind[v.Kind] = append(byKind[v.Kind], v.HiddenBy)
	}
	var parts []string
	for _, k := range order {
		parts = append(parts, wasteVerbs[k]+" by "+layerList(byKind[k]))
	}
	return strings.Join(parts, "; ")
}

// layerList is "layer 4" or "layers 4, 6".
func layerList(ns []int) string {
	ns = slices.Compact(slices.Sorted(slices.Values(ns)))
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	if len(ns) == 1 {
		return "layer " + s[0]
	}
	return "layers " + strings.Join(s, ", ")
}

// printHints writes each hint once, with the layers it is for.
func printHints(w io.Writer, layers []inspect.LayerBloat) {
	var hints []string
	forHint := map[string][]int{}
	for _, l := range layers {
		if l.Hint == "" {
			continue
		}
		if _, ok := forHint[l.Hint]; !ok {
			hints = append(hints, l.Hint)
		}
		forHint[l.Hint] = append(forHint[l.Hint], l.Layer)
	}
	if len(hints) == 0 {
		return
	}
	fmt.Fprintln(w, "Hints:")
	for _, h := range hints {
		fmt.Fprintf(w, "  %s: %s\n", layerList(forHint[h]), h)
	}
}
