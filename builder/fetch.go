package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
)

// Fetched is an ADD URL source downloaded to a local file.
type Fetched struct {
	URL string
	// Name is the file name the URL gives: the last element of its path,
	// or "__unnamed__" (BuildKit's fallback).
	Name string
	// File is the local copy: mode 0600, mtime from Last-Modified when
	// the server sent one (Docker's behaviour; layers clamp it anyway).
	File string
	// Digest is "sha256:<hex>" of the content: the step's input digest.
	Digest string
}

// Fetch downloads rawURL into a new file in dir. A non-2xx status is an
// error, and so is a content digest differing from checksum when checksum
// ("sha256:<hex>") is given; the partial file is removed on any error.
// client nil means http.DefaultClient.
func Fetch(ctx context.Context, client *http.Client, rawURL, checksum, dir string) (_ *Fetched, err error) {
	if client == nil {
		client = http.DefaultClient
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse URL %q: %w", rawURL, err)
	}
	name := "__unnamed__"
	if base := path.Base(u.Path); base != "." && base != "/" {
		name = base
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", rawURL, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("download %s: %s", rawURL, resp.Status)
	}
	f, err := os.CreateTemp(dir, ".add-*")
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", rawURL, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("download %s: %w", rawURL, cerr)
		}
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), resp.Body); err != nil {
		return nil, fmt.Errorf("download %s: %w", rawURL, err)
	}
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if checksum != "" && checksum != digest {
		return nil, fmt.Errorf("download %s: digest mismatch %s != %s", rawURL, checksum, digest)
	}
	if err := f.Chmod(0o600); err != nil {
		return nil, fmt.Errorf("download %s: %w", rawURL, err)
	}
	if lm := resp.Header.Get("Last-Modified"); lm != "" {
		if t, perr := http.ParseTime(lm); perr == nil {
			if err := os.Chtimes(f.Name(), t, t); err != nil {
				return nil, fmt.Errorf("download %s: %w", rawURL, err)
			}
		}
	}
	return &Fetched{URL: rawURL, Name: name, File: f.Name(), Digest: digest}, nil
}
