//go:build !linux

package oci

import (
	"fmt"
	"os"
)

type lockMode int

const (
	lockShared lockMode = iota
	lockExclusive
)

func tryLock(f *os.File, _ lockMode) (bool, error) {
	return false, fmt.Errorf("flock %s: %w", f.Name(), ErrUnsupported)
}

func unlock(f *os.File) error {
	return fmt.Errorf("unlock %s: %w", f.Name(), ErrUnsupported)
}

func syncFS(dir string) error {
	return fmt.Errorf("syncfs %s: %w", dir, ErrUnsupported)
}

func renameNoReplace(oldpath, newpath string) error {
	return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: ErrUnsupported}
}
