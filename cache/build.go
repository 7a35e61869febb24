package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Build is the log of one build, kept so the next build of the same
// Dockerfile can explain what it rebuilt and why.
type Build struct {
	// ID is the [BuildID] of Dockerfile, Context and Target; [Store.PutBuild]
	// computes it when empty.
	ID         string    `json:"id"`
	Dockerfile string    `json:"dockerfile"`
	Context    string    `json:"context"`
	Target     string    `json:"target,omitempty"`
	Time       time.Time `json:"time"`
	// Steps are the filesystem steps in the order the build numbers them.
	Steps []StepLog `json:"steps"`
}

// StepLog is one filesystem step of a [Build].
type StepLog struct {
	Index int    `json:"index"` // 1-based, as progress output numbers it
	Total int    `json:"total"`
	Stage string `json:"stage"` // stage name, or its index when unnamed
	Line  int    `json:"line"`  // Dockerfile line of the instruction
	Text  string `json:"text"`  // the instruction as written
	// Key is the step's cache key; for COPY --link the layer key.
	Key v1.Hash `json:"key,omitzero"`
	// State is the state after the step when it differs from Key (COPY
	// --link: [LinkState]); later steps name it as their parent.
	State  v1.Hash `json:"state,omitzero"`
	Parts  Parts   `json:"parts"`
	Cached bool    `json:"cached"`
	// NoCache: the step was rebuilt on request (--no-cache,
	// --no-cache-filter), not because of a miss.
	NoCache bool `json:"noCache,omitempty"`
}

// StateKey is the state after the step: State, or Key when State is zero.
func (s StepLog) StateKey() v1.Hash {
	if s.State != (v1.Hash{}) {
		return s.State
	}
	return s.Key
}

// BuildID names a build for [Store.LastBuild]: the sha256 (hex) of the
// cleaned absolute Dockerfile path, context path and target stage. Build
// args are deliberately not part of it, so the next build with another
// --build-arg is compared with this one ("ARG VERSION changed 1.2 → 1.3").
func BuildID(dockerfile, contextDir, target string) string {
	var w canonWriter
	w.beginObject()
	w.key("dockerfile").str(filepath.Clean(dockerfile))
	w.key("context").str(filepath.Clean(contextDir))
	w.key("target").str(target)
	w.endObject()
	return sha256Hash(w.b).Hex
}

func (s *Store) buildPath(id string) (string, error) {
	if len(id) != 64 || strings.Trim(id, "0123456789abcdef") != "" {
		return "", fmt.Errorf("build id %q: not a BuildID", id)
	}
	return filepath.Join(s.dir, "builds", id+".json"), nil
}

// PutBuild stores b as the last build of its ID, atomically replacing the
// previous one (without fsync: a log lost in a crash only means the next
// explain has nothing to compare with). A zero Time is set to now.
func (s *Store) PutBuild(b Build) error {
	if b.ID == "" {
		b.ID = BuildID(b.Dockerfile, b.Context, b.Target)
	}
	if b.Time.IsZero() {
		b.Time = time.Now().UTC()
	}
	p, err := s.buildPath(b.ID)
	if err != nil {
		return err
	}
	b.Steps = append([]StepLog(nil), b.Steps...)
	for i := range b.Steps {
		b.Steps[i].Parts = b.Steps[i].Parts.Normalize()
	}
	data, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("encode build log %s: %w", b.ID, err)
	}
	if err := writeAtomic(s.tmpDir(), p, append(data, '\n'), bestEffort); err != nil {
		return fmt.Errorf("put build log %s: %w", b.ID, err)
	}
	return nil
}

// LastBuild returns the build most recently stored under id. None is
// found=false; so is an unreadable log, which is reported to the logger.
func (s *Store) LastBuild(id string) (b Build, found bool, err error) {
	p, err := s.buildPath(id)
	if err != nil {
		return Build{}, false, err
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return Build{}, false, nil
	}
	if err != nil {
		return Build{}, false, fmt.Errorf("read build log %s: %w", id, err)
	}
	if err := json.Unmarshal(data, &b); err != nil || b.ID != id {
		s.log.Warn("ignoring corrupt build log", "id", id, "path", p, "err", err)
		return Build{}, false, nil
	}
	return b, true, nil
}

// walkBuilds calls fn for every readable build log.
func (s *Store) walkBuilds(fn func(Build)) error {
	dir := filepath.Join(s.dir, "builds")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		if b, found, err := s.LastBuild(id); err == nil && found {
			fn(b)
		}
	}
	return nil
}
