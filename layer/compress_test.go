package layer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// mixedData is a few MiB that span several gzip blocks: incompressible
// runs, text, and zeros.
func mixedData() []byte {
	r := rand.New(rand.NewPCG(7, 7))
	var b bytes.Buffer
	for i := 0; b.Len() < 5<<20; i++ {
		switch i % 3 {
		case 0:
			chunk := make([]byte, 300<<10)
			for j := range chunk {
				chunk[j] = byte(r.Uint32())
			}
			b.Write(chunk)
		case 1:
			b.WriteString(strings.Repeat("the quick brown fox jumps over the lazy dog\n", 9000))
		default:
			b.Write(make([]byte, 200<<10))
		}
	}
	return b.Bytes()
}

// compress runs newCompressor over data written in irregular chunks.
func compress(t *testing.T, c Compression, data []byte, seed uint64) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := newCompressor(c, &out)
	if err != nil {
		t.Fatalf("newCompressor(%s) = %v", c, err)
	}
	r := rand.New(rand.NewPCG(seed, 0))
	for p := data; len(p) > 0; {
		n := min(len(p), 1+r.IntN(200<<10))
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatalf("write: %v", err)
		}
		p = p[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return out.Bytes()
}

// withProcs runs f with GOMAXPROCS set to n. Tests that use it are not
// parallel: GOMAXPROCS is process-wide.
func withProcs(n int, f func()) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(n))
	f()
}

func TestCompressIndependentOfCores(t *testing.T) {
	data := mixedData()
	for _, c := range []Compression{Gzip, Zstd} {
		t.Run(string(c), func(t *testing.T) {
			var sums [][32]byte
			for _, procs := range []int{1, 2, 4} {
				withProcs(procs, func() {
					for seed := range uint64(2) {
						sums = append(sums, sha256.Sum256(compress(t, c, data, seed)))
					}
				})
			}
			for i, s := range sums[1:] {
				if s != sums[0] {
					t.Errorf("%s output %d differs from output 0 (GOMAXPROCS 1, 2, 4; two chunkings each)", c, i+1)
				}
			}
		})
	}
}

func TestGzipHeader(t *testing.T) {
	t.Parallel()
	data := mixedData()
	out := compress(t, Gzip, data, 0)
	// RFC 1952 §2.3: ID1 ID2 CM FLG MTIME(4) XFL OS.
	if out[3] != 0 {
		t.Errorf("gzip FLG = %#x, want 0 (no name, comment or extra)", out[3])
	}
	if !bytes.Equal(out[4:8], []byte{0, 0, 0, 0}) {
		t.Errorf("gzip MTIME = %x, want 0", out[4:8])
	}
	if out[9] != 255 {
		t.Errorf("gzip OS = %d, want 255 (unknown)", out[9])
	}
	zr, err := gzip.NewReader(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("stdlib gzip.NewReader = %v", err)
	}
	got, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("stdlib gzip round trip: err %v, equal %v", err, bytes.Equal(got, data))
	}
}

// TestZstdConcurrencyPinned checks the claim behind zstdConcurrency: the
// stream encoder's bytes do not depend on its concurrency.
func TestZstdConcurrencyPinned(t *testing.T) {
	t.Parallel()
	data := mixedData()
	ours := compress(t, Zstd, data, 3)
	var one bytes.Buffer
	zw, err := zstd.NewWriter(&one, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours, one.Bytes()) {
		t.Errorf("zstd with concurrency %d differs from concurrency 1", zstdConcurrency)
	}
}

func TestDetectCompression(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   []byte
		want Compression
	}{
		{[]byte{0x1f, 0x8b, 8, 0}, Gzip},
		{[]byte{0x28, 0xb5, 0x2f, 0xfd, 0}, Zstd},
		{[]byte("etc/passwd\x00"), Uncompressed},
		{[]byte{0x1f}, Uncompressed},
		{nil, Uncompressed},
	}
	for _, tt := range tests {
		got, err := detectCompression(bufio.NewReader(bytes.NewReader(tt.in)))
		if err != nil || got != tt.want {
			t.Errorf("detectCompression(%x) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseCompression(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in        string
		want      Compression
		mediaType string
		bad       bool
	}{
		{"gzip", Gzip, MediaTypeTarGzip, false},
		{"zstd", Zstd, MediaTypeTarZstd, false},
		{"none", Uncompressed, MediaTypeTar, false},
		{"", "", "", true},
		{"GZIP", "", "", true},
		{"xz", "", "", true},
	}
	for _, tt := range tests {
		got, err := ParseCompression(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("ParseCompression(%q) = %q, %v, want %q (error: %v)", tt.in, got, err, tt.want, tt.bad)
		}
		if !tt.bad && got.MediaType() != tt.mediaType {
			t.Errorf("%q.MediaType() = %q, want %q", got, got.MediaType(), tt.mediaType)
		}
	}
	if got := Compression("").MediaType(); got != MediaTypeTarGzip {
		t.Errorf(`Compression("").MediaType() = %q, want %q`, got, MediaTypeTarGzip)
	}
}
