//go:build linux

package exec

// NewRunnerFromProgram returns a Runner that starts its inits from prog,
// an init program as `go generate` builds it, as a Runner of a minibuild
// built with the embedinit tag does.
func NewRunnerFromProgram(prog []byte) (*Runner, error) {
	p, err := newInitProgram(prog)
	if err != nil {
		return nil, err
	}
	return &Runner{prog: p, loaded: true}, nil
}
