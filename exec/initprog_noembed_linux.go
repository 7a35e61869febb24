//go:build linux && !embedinit

package exec

// embeddedInit returns nil: this build re-executes minibuild as the
// sandbox init (see initprog_linux.go).
func embeddedInit() []byte { return nil }
