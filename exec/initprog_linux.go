package exec

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// The init program.
//
// A sandbox's init is minibuild re-executed (/proc/self/exe) or, when
// minibuild is built with its init embedded (the embedinit build tag, see
// initbin/README.md), that init as a program of its own: exec.Init
// without the rest of minibuild, a few MB instead of tens, which starts
// in about a third of the CPU time (page faults and package
// initialization scale with the binary).
//
// The embedded program runs from a sealed memfd, as runc runs itself: no
// file is written anywhere, and nothing, not even root, can change the
// bytes between the check that is minibuild's own build and the exec. The
// sandbox never sees the memfd (it is close-on-exec in the init, see
// closeOnExec).

// programFD is the descriptor that holds the init program in a starting
// init, the one exec opens by its /proc/self/fd path.
const programFD = 5

// initProgram is an embedded init in a sealed memfd, opened read-only:
// exec refuses a file that is open for writing (ETXTBSY).
type initProgram struct {
	file *os.File
}

// loadInitProgram returns the embedded init in a memfd, or nil when
// minibuild was built without one or it cannot be loaded (then the
// sandbox re-executes minibuild, which is slower but the same).
func loadInitProgram() *initProgram {
	prog := embeddedInit()
	if len(prog) == 0 {
		return nil
	}
	p, err := newInitProgram(prog)
	if err != nil {
		return nil
	}
	return p
}

func newInitProgram(prog []byte) (*initProgram, error) {
	const flags = unix.MFD_CLOEXEC | unix.MFD_ALLOW_SEALING
	fd, err := unix.MemfdCreate("minibuild-init", flags|unix.MFD_EXEC)
	if errors.Is(err, unix.EINVAL) {
		fd, err = unix.MemfdCreate("minibuild-init", flags) // before Linux 6.3
	}
	if err != nil {
		return nil, fmt.Errorf("load sandbox init: %w", err)
	}
	w := os.NewFile(uintptr(fd), "minibuild-init")
	defer w.Close()
	if _, err := w.Write(prog); err != nil {
		return nil, fmt.Errorf("load sandbox init: %w", err)
	}
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		return nil, fmt.Errorf("load sandbox init: seal: %w", err)
	}
	r, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", fd), os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("load sandbox init: %w", err)
	}
	return &initProgram{file: r}, nil
}

// exec returns the path to execute for an init and its extra files (from
// descriptor 3 on), given the config socket and status pipe ends.
func (p *initProgram) exec(conf, status *os.File) (string, []*os.File) {
	if p == nil {
		return "/proc/self/exe", []*os.File{conf, status}
	}
	return fmt.Sprintf("/proc/self/fd/%d", programFD), []*os.File{conf, status, p.file}
}

func (p *initProgram) close() {
	if p != nil {
		p.file.Close()
	}
}
