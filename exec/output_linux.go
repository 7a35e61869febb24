package exec

import (
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"time"
)

// outputs connects a command's stdout and stderr to the Spec's writers,
// as os/exec does: an *os.File is passed as it is, nil becomes /dev/null,
// any other writer gets a pipe and a goroutine copying from it. One writer
// given for both gets one pipe, so its lines keep their order.
type outputs struct {
	files  [2]*os.File // what the command gets as stdout and stderr
	opened []*os.File  // files of ours to close once the init has them
	pipes  []pipe
	copied chan error // one value per pipe
}

// pipe is the read end of a pipe and where its data goes.
type pipe struct {
	r *os.File
	w io.Writer
}

func openOutputs(stdout, stderr io.Writer) (*outputs, error) {
	o := &outputs{}
	for i, w := range []io.Writer{stdout, stderr} {
		if i == 1 && w != nil && interfaceEqual(w, stdout) {
			o.files[1] = o.files[0]
			continue
		}
		f, err := o.file(w)
		if err != nil {
			o.close()
			return nil, fmt.Errorf("output of sandbox: %w", err)
		}
		o.files[i] = f
	}
	o.copied = make(chan error, len(o.pipes))
	return o, nil
}

// file returns the file the command writes to for w.
func (o *outputs) file(w io.Writer) (*os.File, error) {
	switch f := w.(type) {
	case nil:
		null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		o.opened = append(o.opened, null)
		return null, nil
	case *os.File:
		return f, nil
	}
	r, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	o.opened = append(o.opened, pw)
	o.pipes = append(o.pipes, pipe{r: r, w: w})
	return pw, nil
}

// start starts copying; call it once the init has the write ends and
// closeSent closed ours, so that a pipe ends when the sandbox does.
func (o *outputs) start() {
	for _, p := range o.pipes {
		go func() {
			_, err := io.Copy(p.w, p.r)
			p.r.Close() // a writer that fails gets EPIPE, as with os/exec
			o.copied <- err
		}()
	}
}

// closeSent closes our copies of the files the init now holds.
func (o *outputs) closeSent() {
	for _, f := range o.opened {
		f.Close()
	}
	o.opened = nil
}

// close releases everything, for a sandbox that never started.
func (o *outputs) close() {
	o.closeSent()
	for _, p := range o.pipes {
		p.r.Close()
	}
}

// wait waits for the copying to finish once the sandbox is gone. Only a
// descriptor smuggled out of the sandbox could keep a pipe open after
// that: after delay, the pipes are closed and an error says so.
func (o *outputs) wait(delay time.Duration) error {
	timer := time.NewTimer(delay)
	defer timer.Stop()
	var errs []error
	for range o.pipes {
		select {
		case err := <-o.copied:
			errs = append(errs, err)
		case <-timer.C:
			for _, p := range o.pipes {
				p.r.Close()
			}
			return fmt.Errorf("output still open %v after the sandbox ended: %w", delay, osexec.ErrWaitDelay)
		}
	}
	return errors.Join(errs...)
}

// interfaceEqual reports a == b, false when they are not comparable.
func interfaceEqual(a, b any) (eq bool) {
	defer func() { _ = recover() }()
	return a == b
}
