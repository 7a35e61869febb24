package builder

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// dispatchExpose adds "port/proto" entries to ExposedPorts. Each argument
// is expanded and split into words (EXPOSE $PORTS works), then parsed like
// BuildKit: ranges expand to every port, the protocol defaults to tcp.
func dispatchExpose(st *stageState, step *Step, c *instructions.ExposeCommand) error {
	var raw []string
	for _, p := range c.Ports {
		words, err := st.p.lex.ProcessWords(p, st.env)
		if err != nil {
			return err
		}
		raw = append(raw, words...)
	}
	var ports []string
	for _, r := range raw {
		ps, err := parsePort(r)
		if err != nil {
			return err
		}
		ports = append(ports, ps...)
	}
	cfg := &st.config.Config
	if cfg.ExposedPorts == nil {
		cfg.ExposedPorts = map[string]struct{}{}
	}
	for _, p := range ports {
		cfg.ExposedPorts[p] = struct{}{}
	}
	canon := append([]string(nil), ports...)
	sort.Strings(canon)
	step.Instruction = "EXPOSE " + joinArgs(canon)
	st.commit(step, fmt.Sprintf("EXPOSE %v", ports), false)
	return nil
}

// parsePort turns "[ip:][hostPort:]port[-end][/proto]" into "port/proto"
// entries (BuildKit's convert_expose.go).
func parsePort(raw string) ([]string, error) {
	ip, hostPort, containerPort := splitPortParts(raw)
	port, proto, _ := strings.Cut(containerPort, "/")
	if port == "" {
		return nil, fmt.Errorf("invalid port: %q: no port specified", raw)
	}
	switch strings.ToLower(proto) {
	case "":
		proto = "tcp"
	case "tcp", "udp", "sctp":
	default:
		return nil, fmt.Errorf("invalid port: %q: invalid proto: %s", raw, proto)
	}
	if strings.HasPrefix(ip, "[") {
		h, _, err := net.SplitHostPort(ip + ":")
		if err != nil {
			return nil, fmt.Errorf("invalid IP address %v: %w", ip, err)
		}
		ip = h
	}
	if ip != "" && net.ParseIP(ip) == nil {
		return nil, errors.New("invalid IP address: " + ip)
	}
	start, end, err := portRange(port)
	if err != nil {
		return nil, errors.New("invalid containerPort: " + port)
	}
	if hostPort != "" {
		hs, he, err := portRange(hostPort)
		if err != nil {
			return nil, errors.New("invalid hostPort: " + hostPort)
		}
		if end-start != he-hs && end != start {
			return nil, fmt.Errorf("invalid ranges specified for container and host Ports: %s and %s", port, hostPort)
		}
	}
	out := make([]string, 0, end-start+1)
	for p := start; p <= end; p++ {
		out = append(out, strconv.Itoa(p)+"/"+strings.ToLower(proto))
	}
	return out, nil
}

func splitPortParts(raw string) (ip, hostPort, containerPort string) {
	parts := strings.Split(raw, ":")
	n := len(parts)
	switch n {
	case 1:
		return "", "", parts[0]
	case 2:
		return "", parts[0], parts[1]
	default:
		return strings.Join(parts[:n-2], ":"), parts[n-2], parts[n-1]
	}
}

func portRange(s string) (int, int, error) {
	a, b, isRange := strings.Cut(s, "-")
	start, err := portNumber(a)
	if err != nil {
		return 0, 0, err
	}
	if !isRange || a == b {
		return start, start, nil
	}
	end, err := portNumber(b)
	if err != nil {
		return 0, 0, err
	}
	if end < start {
		return 0, 0, errors.New("invalid port range: " + s)
	}
	return start, end, nil
}

func portNumber(s string) (int, error) {
	n, err := strconv.ParseInt(s, 10, 0)
	if err != nil || n < 0 || n > 65535 {
		return 0, fmt.Errorf("invalid port %q", s)
	}
	return int(n), nil
}
