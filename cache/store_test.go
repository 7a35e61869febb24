package cache_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"minibuild/cache"
)

// logBuffer collects log output from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func openStore(t *testing.T) (*cache.Store, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	s, err := cache.Open(filepath.Join(t.TempDir(), "cache"), cache.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	return s, logs
}

func sampleRecord() cache.Record {
	return cache.Record{
		Parts: sampleParts(),
		Layer: cache.LayerRef{
			MediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
			Digest:    hash("c1"), Size: 123, DiffID: hash("d1"), UncompressedSize: 1024,
		},
	}
}

func recordPath(s *cache.Store, k v1.Hash) string {
	return filepath.Join(s.Dir(), "records", k.Hex[:2], k.Hex+".json")
}

func TestPutGet(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	r := sampleRecord()
	if _, found, err := s.Get(r.Parts.Key()); err != nil || found {
		t.Fatalf("Get before Put = found %v, err %v; want a miss", found, err)
	}
	if err := s.Put(r); err != nil {
		t.Fatal(err)
	}
	got, found, err := s.Get(r.Parts.Key())
	if err != nil || !found {
		t.Fatalf("Get after Put = found %v, err %v", found, err)
	}
	want := r
	want.Key = r.Parts.Key()
	want.Parts = r.Parts.Normalize()
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(cache.Record{}, "Created", "LastUsed")); diff != "" {
		t.Errorf("Get mismatch (-want +got):\n%s", diff)
	}
	if got.Created.IsZero() || got.LastUsed.IsZero() {
		t.Errorf("Created %v, LastUsed %v: want both set", got.Created, got.LastUsed)
	}
	// An empty layer (step that changed nothing) round-trips as zero.
	empty := cache.Record{Parts: sampleParts()}
	empty.Parts.Instruction = "WORKDIR /"
	if err := s.Put(empty); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.Get(empty.Parts.Key()); got.Layer != (cache.LayerRef{}) {
		t.Errorf("empty layer = %+v, want zero", got.Layer)
	}
	entries, _ := os.ReadDir(filepath.Join(s.Dir(), "tmp"))
	if len(entries) != 0 {
		t.Errorf("temp files left after Put: %v", entries)
	}
}

func TestPutKeyMismatch(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	r := sampleRecord()
	r.Key = hash("ff")
	if err := s.Put(r); err == nil || !strings.Contains(err.Error(), cache.ErrKeyMismatch.Error()) {
		t.Errorf("Put(wrong key) = %v, want ErrKeyMismatch", err)
	}
}

func TestGetCorrupt(t *testing.T) {
	t.Parallel()
	k := sampleParts().Key()
	other := hash("ee")
	good, _ := os.ReadFile(func() string {
		s, _ := openStore(t)
		if err := s.Put(sampleRecord()); err != nil {
			t.Fatal(err)
		}
		return recordPath(s, k)
	}())
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"garbage", []byte("\x00\x01not json")},
		{"truncated", good[:len(good)/2]},
		{"no key", []byte(`{"parts":{}}`)},
		{"other key", bytes.Replace(good, []byte(k.Hex), []byte(other.Hex), 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, logs := openStore(t)
			p := recordPath(s, k)
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, found, err := s.Get(k); found || err != nil {
				t.Errorf("Get(corrupt) = found %v, err %v; want a miss", found, err)
			}
			if !strings.Contains(logs.String(), "corrupt cache record") {
				t.Errorf("corrupt record not reported; log: %q", logs.String())
			}
			// Put repairs it.
			if err := s.Put(sampleRecord()); err != nil {
				t.Fatal(err)
			}
			if _, found, _ := s.Get(k); !found {
				t.Errorf("Get after repairing Put: miss")
			}
		})
	}
}

// TestPutAtomic races readers against writers of the same keys: a reader
// sees no record or a whole one, never a part, and nothing is reported
// corrupt.
func TestPutAtomic(t *testing.T) {
	t.Parallel()
	s, logs := openStore(t)
	recs := make([]cache.Record, 4)
	for i := range recs {
		recs[i] = sampleRecord()
		recs[i].Parts.Instruction = fmt.Sprintf("RUN step %d %s", i, strings.Repeat("x", 20000))
		recs[i].Layer.Size = int64(i)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range recs {
		wg.Go(func() {
			for n := 0; n < 30; n++ {
				if err := s.Put(recs[i]); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for i, r := range recs {
					got, found, err := s.Get(r.Parts.Key())
					if err != nil {
						t.Error(err)
						return
					}
					if found && (got.Layer.Size != int64(i) || got.Parts.Instruction != r.Parts.Instruction) {
						t.Errorf("Get returned a mixed record for %d", i)
					}
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	if l := logs.String(); l != "" {
		t.Errorf("log during concurrent Put/Get: %s", l)
	}
}

func TestWalkDeleteLastUsed(t *testing.T) {
	t.Parallel()
	s, logs := openStore(t)
	var keys []v1.Hash
	for i := range 5 {
		r := sampleRecord()
		r.Parts.Instruction = fmt.Sprintf("RUN %d", i)
		if err := s.Put(r); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, r.Parts.Key())
	}
	// Age every record, then use one: it becomes the most recent.
	old := time.Now().Add(-48 * time.Hour)
	for _, k := range keys {
		if err := os.Chtimes(recordPath(s, k), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if _, found, _ := s.Get(keys[2]); !found {
		t.Fatal("Get: miss")
	}
	// A corrupt record is skipped by Walk and reported.
	bad := hash("ab")
	if err := os.MkdirAll(filepath.Dir(recordPath(s, bad)), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(recordPath(s, bad), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	seen := map[v1.Hash]time.Time{}
	err := s.Walk(context.Background(), func(r cache.Record) error {
		seen[r.Key] = r.LastUsed
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(keys) {
		t.Errorf("Walk saw %d records, want %d", len(seen), len(keys))
	}
	for i, k := range keys {
		recent := time.Since(seen[k]) < time.Hour
		if recent != (i == 2) {
			t.Errorf("record %d LastUsed = %v (recent %v), want recent only for the one looked up", i, seen[k], recent)
		}
	}
	if !strings.Contains(logs.String(), "corrupt cache record") {
		t.Errorf("Walk did not report the corrupt record")
	}
	for _, k := range keys[:3] {
		if err := s.Delete(k); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(keys[0]); err != nil {
		t.Errorf("Delete of a missing record = %v, want nil", err)
	}
	if _, found, _ := s.Get(keys[0]); found {
		t.Errorf("Get after Delete: hit")
	}
	n := 0
	s.Walk(context.Background(), func(cache.Record) error { n++; return nil })
	if n != 2 {
		t.Errorf("Walk after Delete saw %d records, want 2", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Walk(ctx, func(cache.Record) error { return nil }); err == nil {
		t.Errorf("Walk with a cancelled context = nil, want an error")
	}
}

func TestListings(t *testing.T) {
	t.Parallel()
	s, logs := openStore(t)
	files := make([]cache.File, 0, 20000)
	for i := range 20000 {
		files = append(files, cache.File{
			Path: fmt.Sprintf("small/p%02d/q%d/f%03d.txt", i/1000, i/100%10, i%100),
			Type: cache.TypeFile, Mode: 0o644, Size: int64(i), Digest: hash(fmt.Sprintf("%02x", i%256)),
		})
	}
	files = append(files, listing()...)
	id, err := s.PutFiles(files)
	if err != nil {
		t.Fatal(err)
	}
	if want := cache.Digest(files); id != want {
		t.Errorf("PutFiles id = %s, want Digest %s", id, want)
	}
	if again, err := s.PutFiles(files); err != nil || again != id {
		t.Errorf("second PutFiles = %s, %v", again, err)
	}
	got, found, err := s.Files(id)
	if err != nil || !found {
		t.Fatalf("Files = found %v, err %v", found, err)
	}
	want := slices.Clone(files)
	slices.SortFunc(want, func(a, b cache.File) int { return strings.Compare(a.Path, b.Path) })
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Files mismatch (-want +got):\n%s", diff)
	}
	if _, found, err := s.Files(hash("99")); found || err != nil {
		t.Errorf("Files(missing) = found %v, err %v", found, err)
	}
	// Damage it: a miss, reported.
	p := filepath.Join(s.Dir(), "files", id.Hex[:2], id.Hex)
	data, _ := os.ReadFile(p)
	data[len(data)-3] ^= 0xff
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, found, err := s.Files(id); found || err != nil {
		t.Errorf("Files(corrupt) = found %v, err %v; want a miss", found, err)
	}
	if !strings.Contains(logs.String(), "corrupt listing") {
		t.Errorf("corrupt listing not reported")
	}
}

func TestBuilds(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	id := cache.BuildID("/src/app/Dockerfile", "/src/app", "")
	if id == cache.BuildID("/src/app/Dockerfile", "/src/app", "final") ||
		id == cache.BuildID("/src/app/Dockerfile", "/src", "") ||
		id == cache.BuildID("/src/other/Dockerfile", "/src/app", "") {
		t.Errorf("BuildID ignores one of its parts")
	}
	if id != cache.BuildID("/src/app/./Dockerfile", "/src/app/", "") {
		t.Errorf("BuildID does not clean paths")
	}
	if _, found, err := s.LastBuild(id); found || err != nil {
		t.Fatalf("LastBuild before PutBuild = found %v, err %v", found, err)
	}
	b := cache.Build{Dockerfile: "/src/app/Dockerfile", Context: "/src/app", Steps: []cache.StepLog{
		{Index: 1, Total: 1, Stage: "0", Line: 2, Text: "RUN make", Key: sampleParts().Key(), Parts: sampleParts()},
	}}
	if err := s.PutBuild(b); err != nil {
		t.Fatal(err)
	}
	got, found, err := s.LastBuild(id)
	if err != nil || !found {
		t.Fatalf("LastBuild = found %v, err %v", found, err)
	}
	if got.ID != id || len(got.Steps) != 1 || got.Steps[0].Parts.Key() != sampleParts().Key() || got.Time.IsZero() {
		t.Errorf("LastBuild = %+v", got)
	}
	if _, _, err := s.LastBuild("../../etc/passwd"); err == nil {
		t.Errorf("LastBuild(bad id) = nil error")
	}
}

func TestPruneFiles(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	kept := []cache.File{{Path: "kept", Type: cache.TypeFile}}
	dropped := []cache.File{{Path: "dropped", Type: cache.TypeFile}}
	keptID, _ := s.PutFiles(kept)
	droppedID, _ := s.PutFiles(dropped)
	r := sampleRecord()
	r.Parts.Inputs = append(r.Parts.Inputs, cache.Input{Kind: cache.InputContext, Digest: keptID})
	if err := s.Put(r); err != nil {
		t.Fatal(err)
	}
	// Fresh listings survive (a running build may be about to use them).
	if n, err := s.PruneFiles(context.Background()); err != nil || n != 0 {
		t.Errorf("PruneFiles of fresh listings = %d, %v; want 0", n, err)
	}
	old := time.Now().Add(-2 * time.Hour)
	for _, id := range []v1.Hash{keptID, droppedID} {
		os.Chtimes(filepath.Join(s.Dir(), "files", id.Hex[:2], id.Hex), old, old)
	}
	if n, err := s.PruneFiles(context.Background()); err != nil || n != 1 {
		t.Errorf("PruneFiles = %d, %v; want 1", n, err)
	}
	if _, found, _ := s.Files(keptID); !found {
		t.Errorf("referenced listing was pruned")
	}
	if _, found, _ := s.Files(droppedID); found {
		t.Errorf("unreferenced listing was kept")
	}
}

func TestOpenRemovesStaleTemp(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "cache")
	if _, err := cache.Open(dir); err != nil {
		t.Fatal(err)
	}
	stale, fresh := filepath.Join(dir, "tmp", "stale"), filepath.Join(dir, "tmp", "fresh")
	os.WriteFile(stale, nil, 0o600)
	os.WriteFile(fresh, nil, 0o600)
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(stale, old, old)
	if _, err := cache.Open(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temp file kept")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temp file removed: %v", err)
	}
}

func TestStoreStatCache(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	c, err := s.StatCache("/home/me/app")
	if err != nil {
		t.Fatal(err)
	}
	c.Add("f", cache.Stat{Ino: 1, Mtime: 1, Ctime: 1}, hash("ab"), nil)
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	again, _ := s.StatCache("/home/me/app/")
	other, _ := s.StatCache("/home/me/other")
	if again.Len() != 1 || other.Len() != 0 {
		t.Errorf("StatCache per context: same dir %d entries (want 1), other dir %d (want 0)", again.Len(), other.Len())
	}
}

func TestWriteKeyMaterial(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	files := listing()
	id, err := s.PutFiles(files)
	if err != nil {
		t.Fatal(err)
	}
	p := sampleParts()
	p.Inputs = append(p.Inputs, cache.Input{Kind: cache.InputContext, Digest: id}, cache.Input{Kind: cache.InputContext, Name: "gone", Digest: hash("77")})
	var buf bytes.Buffer
	if err := cache.WriteKeyMaterial(&buf, p, s); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"key " + p.Key().String() + "\n" + string(p.Canonical()) + "\n", `"src/main.go"`, "(listing not stored)"} {
		if !strings.Contains(out, want) {
			t.Errorf("WriteKeyMaterial output lacks %q:\n%s", want, out)
		}
	}
}

// TestBuildUnreachedStep: a failed build logs steps it never reached,
// without a key; the log must still load.
func TestBuildUnreachedStep(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	b := cache.Build{Dockerfile: "/d/Dockerfile", Context: "/d", Steps: []cache.StepLog{{Index: 1, Total: 1, Text: "RUN x"}}}
	if err := s.PutBuild(b); err != nil {
		t.Fatal(err)
	}
	got, found, err := s.LastBuild(cache.BuildID("/d/Dockerfile", "/d", ""))
	if err != nil || !found || len(got.Steps) != 1 || got.Steps[0].Key != (v1.Hash{}) {
		t.Errorf("LastBuild = %+v, %v, %v", got, found, err)
	}
}
