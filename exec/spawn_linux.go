package exec

import (
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// initProc is one sandbox init: a process in new mount, PID, UTS and IPC
// namespaces that waits for its configuration. Starting it costs what
// starting any Go program costs, most of a short step's overhead, and it
// does not depend on the Spec it will run: the network namespace of
// [NetworkNone] is unshared by the init once it knows, and the command's
// stdout and stderr travel with the configuration. So a [Runner] starts
// the next one while the current step runs.
type initProc struct {
	prog     *initProgram  // what it runs, nil for minibuild itself
	started  chan struct{} // closed when the fork and exec are done
	startErr error         // set before started is closed
	cmd      *osexec.Cmd
	conf     *os.File // the parent's end of the config socket
	status   *os.File // the read end of the status pipe

	exited  chan struct{} // closed when the init has been reaped
	waitErr error         // cmd.Wait's, set before exited is closed
}

// startInit starts an init from prog in the background and returns at
// once. It calls done when prog is no longer needed.
func startInit(prog *initProgram, done func()) *initProc {
	p := &initProc{prog: prog, started: make(chan struct{}), exited: make(chan struct{})}
	go p.own(done)
	return p
}

// own starts the init and waits for it, on one locked OS thread. The
// kernel sends an init its parent-death signal when the thread that
// forked it exits, not the process, and Go ends any thread that a
// goroutine leaves while locked to it (WithRoot does so on purpose).
// Holding this thread until the init is reaped keeps it alive and out of
// other goroutines' hands (golang/go#27505).
func (p *initProc) own(done func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(p.exited)
	p.startErr = p.start()
	done()
	close(p.started)
	if p.startErr != nil {
		return
	}
	p.waitErr = p.cmd.Wait()
}

func (p *initProc) start() (err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("config socket: %w", err)
	}
	p.conf = os.NewFile(uintptr(fds[0]), "config")
	child := os.NewFile(uintptr(fds[1]), "config")
	defer child.Close()
	var statW *os.File
	if p.status, statW, err = os.Pipe(); err != nil {
		p.conf.Close()
		return fmt.Errorf("status pipe: %w", err)
	}
	defer statW.Close()
	defer func() {
		if err != nil {
			p.conf.Close()
			p.status.Close()
		}
	}()

	path, files := p.prog.exec(child, statW)
	cmd := osexec.Command(path, initArg)
	cmd.Args[0] = "minibuild"
	// The init's own environment, not the command's (which travels in
	// the config). It does one thing at a time: a single P keeps the Go
	// runtime from starting threads that exec then has to kill.
	cmd.Env = []string{"GOMAXPROCS=1"}
	// Stdin, stdout and stderr are /dev/null until the config brings the
	// command's.
	cmd.ExtraFiles = files
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC,
		// The init dies with minibuild; as PID 1 it takes the sandbox
		// with it. Its own process group keeps a terminal's Ctrl-C away:
		// minibuild cancels, which kills the sandbox as a whole.
		Pdeathsig: syscall.SIGKILL,
		Setpgid:   true,
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmd = cmd
	return nil
}

// ready waits until the init is started and reports whether it is still
// waiting for its config: an init can die while it waits (the OOM killer,
// a stray kill), and then another one must do.
func (p *initProc) ready() error {
	<-p.started
	if p.startErr != nil {
		return p.startErr
	}
	select {
	case <-p.exited:
		return errors.New("sandbox init exited before it was used")
	default:
		return nil
	}
}

// kill kills the init. It is idempotent and harmless once the init has
// exited (os.Process signals through a pidfd, never a reused PID).
func (p *initProc) kill() {
	<-p.started
	if p.cmd != nil {
		_ = p.cmd.Process.Kill()
	}
}

// discard kills an init that will not be used, waits until it is
// reaped and closes its pipes.
func (p *initProc) discard() {
	p.kill()
	<-p.exited
	p.release()
}

// release closes the parent's ends of the init's pipes.
func (p *initProc) release() {
	if p.startErr == nil {
		p.conf.Close()
		p.status.Close()
	}
}

// sendConfig passes the init the command's stdout and stderr and its
// configuration, then closes the socket. The descriptors go first, with
// one byte of data (SCM_RIGHTS needs some to travel with).
func (p *initProc) sendConfig(cfg []byte, stdout, stderr *os.File) error {
	defer p.conf.Close()
	rc, err := p.conf.SyscallConn()
	if err != nil {
		return fmt.Errorf("send sandbox config: %w", err)
	}
	var serr error
	err = rc.Write(func(fd uintptr) bool {
		rights := unix.UnixRights(int(stdout.Fd()), int(stderr.Fd()))
		serr = unix.Sendmsg(int(fd), []byte{stdioByte}, rights, nil, unix.MSG_NOSIGNAL)
		return true
	})
	if err = errors.Join(err, serr); err != nil {
		return fmt.Errorf("send sandbox config: %w", err)
	}
	if _, err := p.conf.Write(cfg); err != nil {
		return fmt.Errorf("send sandbox config: %w", err)
	}
	return nil
}
