// Command minibuild-init is the RUN sandbox's init on its own: what
// minibuild runs as PID 1 of a sandbox when it is built with the init
// embedded (see package exec, initprog_linux.go). It is exec.Init and
// nothing else, so it starts much faster than minibuild itself. It is not
// meant to be run by hand.
package main

import "minibuild/exec"

func main() { exec.Init() }
