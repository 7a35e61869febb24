package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"minibuild/builder"
	"minibuild/exec"
)

// printBuildError writes a failed build's error to w:
//
//	Dockerfile:12: COPY missing.txt /app/: missing.txt: not found
//	  10 |     FROM busybox
//	  11 |     WORKDIR /app
//	  12 | >>> COPY missing.txt /app/
//	  13 |     CMD ["sh"]
//
// The first line alone says what and where; the excerpt follows, and for
// a command that exited non-zero, its last output lines. file replaces the
// Dockerfile's name when not empty (a Dockerfile read from stdin lives in
// a temporary file). Errors not tied to a Dockerfile line are printed as
// "minibuild: <error>".
func printBuildError(w io.Writer, err error, file string, p *progress) {
	var b strings.Builder
	de, ok := errors.AsType[*builder.DockerfileError](err)
	if ok {
		shown := *de
		if file != "" {
			shown.File = file
		}
		b.WriteString(firstLine(shown.Error()))
		b.WriteByte('\n')
		writeExcerpt(&b, de.Excerpt)
	} else {
		fmt.Fprintf(&b, "minibuild: %v\n", err)
	}
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		name, lines := "", []string(nil)
		if p != nil {
			name, lines = p.failedOutput()
		}
		if de != nil && len(de.Output) > 0 {
			lines = de.Output
			if de.Step > 0 {
				name = fmt.Sprintf("step %d/%d", de.Step, de.Steps)
			}
		}
		if len(lines) > 0 {
			fmt.Fprintf(&b, "last output of %s (%s):\n", name, ee)
			for _, l := range lines {
				fmt.Fprintf(&b, "  > %s\n", truncate(l, 500))
			}
		}
	}
	io.WriteString(w, b.String())
}

// writeExcerpt prints Dockerfile lines with numbers, ">>>" marking the
// lines the error is about.
func writeExcerpt(b *strings.Builder, lines []builder.SourceLine) {
	width := 1
	for _, l := range lines {
		width = max(width, len(fmt.Sprint(l.Number)))
	}
	for _, l := range lines {
		mark := "   "
		if l.Highlight {
			mark = ">>>"
		}
		line := fmt.Sprintf("  %*d | %s %s", width, l.Number, mark, l.Text)
		b.WriteString(strings.TrimRight(line, " \t"))
		b.WriteByte('\n')
	}
}
