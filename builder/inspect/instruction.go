package inspect

import (
	"strconv"
	"strings"
)

// Instruction shortens a history entry's created_by to the Dockerfile
// instruction that wrote it, for people:
//
//	RUN /bin/sh -c chmod -R 0777 /data # buildkit   →  RUN chmod -R 0777 /data
//	RUN |1 V=2 /bin/sh -c make # buildkit           →  RUN make
//	COPY app /app # buildkit                        →  COPY app /app
//	/bin/sh -c #(nop)  CMD ["sh"]                   →  CMD ["sh"]        (docker build)
//	/bin/sh -c apk add curl                         →  RUN apk add curl  (docker build)
//
// Anything else comes back as it is. Runs of white space (line
// continuations joined) become one space.
func Instruction(createdBy string) string {
	s := strings.Join(strings.Fields(createdBy), " ")
	s = strings.TrimSpace(strings.TrimSuffix(s, "# buildkit"))
	if rest, ok := strings.CutPrefix(s, "/bin/sh -c "); ok {
		if nop, ok := strings.CutPrefix(strings.TrimSpace(rest), "#(nop)"); ok {
			return strings.TrimSpace(nop)
		}
		return "RUN " + strings.TrimSpace(rest)
	}
	rest, ok := strings.CutPrefix(s, "RUN ")
	if !ok {
		return s
	}
	rest = skipBuildArgs(rest)
	if cmd, ok := strings.CutPrefix(rest, "/bin/sh -c "); ok {
		rest = cmd
	}
	return "RUN " + strings.TrimSpace(rest)
}

// skipBuildArgs drops BuildKit's "|N K=V …" prefix of a RUN's created_by:
// the build args in scope, N of them.
func skipBuildArgs(s string) string {
	if !strings.HasPrefix(s, "|") {
		return s
	}
	fields := strings.SplitN(s[1:], " ", 2)
	n, err := strconv.Atoi(fields[0])
	if err != nil || len(fields) < 2 {
		return s
	}
	rest := fields[1]
	for range n {
		_, after, ok := strings.Cut(rest, " ")
		if !ok {
			return s
		}
		rest = after
	}
	return rest
}
