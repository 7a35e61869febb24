//go:build !linux

package cache

import "os"

// mapFile reads the file at path.
func mapFile(path string) ([]byte, error) { return os.ReadFile(path) }

// unmapFile releases a mapFile result (nothing to do).
func unmapFile([]byte) {}
