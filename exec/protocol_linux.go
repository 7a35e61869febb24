package exec

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// The parent and the sandbox init talk over a socket and a pipe, passed
// as extra file descriptors (never through the environment):
//
//   - configFD, a socket: the parent sends one byte carrying the
//     command's stdout and stderr (SCM_RIGHTS), then one JSON initConfig,
//     and closes it. An init may wait there for a long time: a Runner
//     starts it before the step it will run is known;
//   - statusFD, a pipe: the init writes one JSON initMessage per line. It
//     is close-on-exec in the init, so EOF after an Exec message means the
//     command started; an Err message reports a setup or exec failure
//     precisely; EOF without either means the init died.
//
// Stub messages are an intent log: the init sends one before it creates a
// mountpoint in the root, so the parent can remove it from the upper
// directory even if the init is killed halfway.
const (
	configFD = 3
	statusFD = 4
)

// stdioByte is the byte that carries the command's stdout and stderr.
const stdioByte = 'F'

// protocolVersion names this protocol. An init built from other sources
// (a stale embedded init program) refuses a config of another version
// instead of misreading it; change it with any change to initConfig,
// initMessage or their meaning.
const protocolVersion = 2

// initConfig is what the init needs, all of it data.
type initConfig struct {
	Protocol int
	Args     []string
	Env      []string
	Cwd      string
	User     string
	Hostname string
	Network  Network
	Mounts   []Mount
	Upper    string // host path of the upper dir, to tell copy-ups apart
	Work     string // host path of the work dir, covered by the init's tmpfs
	Merged   string // host path where the root is mounted before pivot_root
}

type initMessage struct {
	Stub *stub      `json:",omitempty"`
	Exec bool       `json:",omitempty"`
	Err  *wireError `json:",omitempty"`
}

// stub is a path (relative to the root) that the init creates, or causes
// overlay to copy up, only to mount something on it.
type stub struct {
	Path string
	// Copied marks an existing lower directory that becomes a copy in the
	// upper directory because a stub is created inside it. Mode, UID and
	// GID are the lower directory's, to tell whether the step changed it.
	Copied   bool   `json:",omitempty"`
	Mode     uint32 `json:",omitempty"`
	UID, GID uint32 `json:",omitempty"`
}

// wireError carries an error across the pipe with what errors.Is needs.
type wireError struct {
	Text        string
	Errno       syscall.Errno `json:",omitempty"`
	UnknownUser bool          `json:",omitempty"`
}

func toWire(err error) *wireError {
	w := &wireError{Text: err.Error(), UnknownUser: errors.Is(err, ErrUnknownUser)}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		w.Errno = errno
	}
	return w
}

// setupError is a sandbox setup failure reported by the init: the text is
// the init's, the cause keeps errors.Is working (fs.ErrNotExist for a
// missing command, ErrUnknownUser for a bad USER).
type setupError struct {
	text  string
	cause error
}

func (e *setupError) Error() string { return e.text }
func (e *setupError) Unwrap() error { return e.cause }

func (w *wireError) err() error {
	e := &setupError{text: w.Text}
	switch {
	case w.UnknownUser:
		e.cause = ErrUnknownUser
	case w.Errno != 0:
		e.cause = w.Errno
	}
	return e
}

// status is what the parent learned from the init.
type status struct {
	heard   bool // any message
	stubs   []stub
	started bool  // the init was about to exec the command
	err     error // setup or exec failure
}

// readStatus reads the init's messages until EOF. A torn last line (the
// init killed while writing) ends the stream like EOF.
func readStatus(r io.Reader) status {
	var st status
	dec := json.NewDecoder(bufio.NewReader(r))
	for {
		var m initMessage
		if err := dec.Decode(&m); err != nil {
			return st
		}
		st.heard = true
		if m.Stub != nil {
			st.stubs = append(st.stubs, *m.Stub)
		}
		if m.Exec {
			st.started = true
		}
		if m.Err != nil {
			st.started = false
			st.err = m.Err.err()
		}
	}
}

// reporter writes the init's messages. Each is one write of one line,
// well under PIPE_BUF, so a message is never torn by a concurrent reader.
type reporter struct{ f *os.File }

func (r reporter) send(m initMessage) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if _, err := r.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("report to parent: %w", err)
	}
	return nil
}
