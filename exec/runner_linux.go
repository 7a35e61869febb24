package exec

import (
	"context"
	"fmt"
	"sync"
)

// Runner runs sandboxes like [Run] and keeps one sandbox init started
// ahead of need. Starting an init (a Go program: its runtime, its
// packages, its page faults) is most of the cost of a short step; a
// Runner starts the next one as soon as a Run takes the current one, so
// that in a series of steps it is ready when the next Run wants it, and
// it starts them from the small embedded init program when minibuild has
// one (see initprog_linux.go).
//
// The spare init is a sleeping process in new namespaces, waiting on a
// socket: it uses no CPU, holds a copy of the host's mount table (as any
// sandbox does while it runs) and dies with minibuild, even by SIGKILL
// (its parent-death signal). [Runner.Close] kills it. A Runner is safe for
// concurrent use; concurrent Runs share the one spare, and a Run that
// finds it taken starts its own init.
type Runner struct {
	oneShot bool // no spare: the package-level Run

	mu     sync.Mutex
	spare  *initProc
	closed bool
	prog   *initProgram // the embedded init, nil until loaded or if none
	loaded bool         // prog has been looked for
	noProg bool         // prog failed to start: re-execute minibuild
	// starting counts the inits being started from prog, which Close
	// waits for before it closes prog. Only inits started before Close
	// use prog.
	starting sync.WaitGroup
}

// NewRunner returns a Runner. It starts nothing: the first Run starts its
// init as [Run] does, and the spare.
func NewRunner() *Runner { return &Runner{} }

// Run is [Run] on the Runner's spare init, with the same guarantees. It
// starts the next spare unless the Runner is closed.
func (r *Runner) Run(ctx context.Context, s Spec) error {
	if err := s.validate(); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("run %s: %w", s.Args[0], err)
	}
	return run(ctx, s, r)
}

// Close kills the spare init and waits until it is gone. Runs in
// progress are not affected; a Run after Close starts its own init, from
// minibuild itself, and no spare. Close is idempotent and always returns
// nil.
func (r *Runner) Close() error {
	r.mu.Lock()
	p := r.spare
	r.spare, r.closed = nil, true
	r.mu.Unlock()
	if p != nil {
		p.discard()
	}
	r.starting.Wait()
	r.prog.close()
	return nil
}

// take returns the spare init, or a new one, and starts the next spare.
func (r *Runner) take() *initProc {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.spare
	r.spare = nil
	if p == nil {
		p = r.start()
	}
	if !r.closed && !r.oneShot {
		r.spare = r.start()
	}
	return p
}

// retry returns a new init in place of p, which failed to start or died
// while it waited. An embedded program that fails to start (a kernel
// that refuses to execute a memfd, say) is given up for minibuild itself.
func (r *Runner) retry(p *initProc) *initProc {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.prog != nil && p.startErr != nil {
		r.noProg = true
	}
	return r.start()
}

// start starts an init; r.mu is held.
func (r *Runner) start() *initProc {
	if r.closed || r.noProg {
		return startInit(nil, func() {})
	}
	if !r.loaded {
		r.prog, r.loaded = loadInitProgram(), true
	}
	r.starting.Add(1)
	return startInit(r.prog, r.starting.Done)
}
