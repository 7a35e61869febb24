package oci

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"minibuild/oci/ocitest"
)

func TestWriteBlobRoundTrip(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	data := []byte("hello blob")
	h := ocitest.Digest(data)
	if s.HasBlob(h) {
		t.Fatalf("HasBlob(%s) before writing = true", h)
	}
	if err := s.WriteBlob(context.Background(), bytes.NewReader(data), h, int64(len(data))); err != nil {
		t.Fatalf("WriteBlob = %v", err)
	}
	if !s.HasBlob(h) {
		t.Fatalf("HasBlob(%s) = false after WriteBlob", h)
	}
	rc, err := s.OpenBlob(h)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("OpenBlob read = %q, %v; want %q, nil", got, err, data)
	}
	// Present already: r is not read at all.
	if err := s.WriteBlob(context.Background(), iotestErrReader{}, h, int64(len(data))); err != nil {
		t.Errorf("WriteBlob(existing) = %v, want nil without reading", err)
	}
	assertNoIngest(t, s)
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("read called") }

func TestWriteBlobRejectsBadContent(t *testing.T) {
	t.Parallel()
	data := []byte("some content")
	tests := []struct {
		name string
		want v1.Hash
		size int64
		err  error
	}{
		{"wrong digest", ocitest.Digest([]byte("other")), int64(len(data)), ErrDigestMismatch},
		{"wrong size", ocitest.Digest(data), int64(len(data)) + 1, ErrSizeMismatch},
		{"sha512", v1.Hash{Algorithm: "sha512", Hex: "00"}, -1, ErrUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			err := s.WriteBlob(context.Background(), bytes.NewReader(data), tc.want, tc.size)
			if !errors.Is(err, tc.err) {
				t.Errorf("WriteBlob = %v, want %v", err, tc.err)
			}
			if s.HasBlob(tc.want) {
				t.Errorf("blob %s visible after a failed write", tc.want)
			}
			assertNoBlobs(t, s)
			assertNoIngest(t, s)
		})
	}
}

func TestIngestAbortAndUnknownSize(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ing, err := s.NewIngest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(ing, "abandoned")
	if err := ing.Close(); err != nil {
		t.Fatal(err)
	}
	assertNoIngest(t, s)
	assertNoBlobs(t, s)

	ing, err = s.NewIngest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer ing.Close()
	io.WriteString(ing, "known later")
	if err := ing.Commit(ing.Digest(), -1); err != nil {
		t.Fatalf("Commit(size -1) = %v", err)
	}
	if !s.HasBlob(ocitest.Digest([]byte("known later"))) {
		t.Errorf("committed blob missing")
	}
}

func TestIngestStopsWithContext(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	ing, err := s.NewIngest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer ing.Close()
	cancel()
	if _, err := ing.Write([]byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Write after cancel = %v, want context.Canceled", err)
	}
}

func TestOpenBlobDetectsCorruption(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	data := []byte("original bytes")
	h := ocitest.Digest(data)
	if err := s.WriteBlob(context.Background(), bytes.NewReader(data), h, -1); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.blobPath(h), []byte("Original bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	rc, err := s.OpenBlob(h)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadAll(rc); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("reading a corrupted blob = %v, want ErrDigestMismatch", err)
	}
	if _, err := s.OpenBlob(ocitest.Digest([]byte("absent"))); !errors.Is(err, ErrNotFound) {
		t.Errorf("OpenBlob(absent) = %v, want ErrNotFound", err)
	}
}

func assertNoIngest(t *testing.T, s *Store) {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(s.Root(), "ingest"))
	if len(entries) != 0 {
		t.Errorf("ingest/ holds %d entries, want none", len(entries))
	}
}

func assertNoBlobs(t *testing.T, s *Store) {
	t.Helper()
	entries, _ := os.ReadDir(s.blobsDir())
	if len(entries) != 0 {
		t.Errorf("blobs/sha256 holds %d entries, want none", len(entries))
	}
}
