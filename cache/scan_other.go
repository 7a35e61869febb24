//go:build !linux

package cache

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Scan needs Linux; elsewhere it returns [ErrUnsupported].
func Scan(ctx context.Context, dir string, opts ScanOptions) ([]File, error) {
	return nil, fmt.Errorf("scan %s: %w", dir, ErrUnsupported)
}

// Digest needs Linux; elsewhere it returns [ErrUnsupported].
func (c *StatCache) Digest(path, rel string) (v1.Hash, error) {
	return v1.Hash{}, fmt.Errorf("digest %s: %w", path, ErrUnsupported)
}
