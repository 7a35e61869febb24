package builder

import (
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// EventKind says what an [Event] reports.
type EventKind int

// Event kinds, in the order a vertex goes through them: Start, then any
// number of Log and Status, then exactly one of Cached, Done or Error.
const (
	// EventStart: a vertex began (a step, or internal work such as
	// "load build definition", "unpack base layer", "exporting to image").
	EventStart EventKind = iota
	// EventLog: output of a RUN step (Stream 1 or 2, Data).
	EventLog
	// EventStatus: a progress line inside a vertex (Message; Current and
	// Total bytes when known), e.g. "writing layer sha256:… 12.3MB".
	EventStatus
	// EventCached: the vertex was satisfied from the cache.
	EventCached
	// EventDone: the vertex finished (Duration).
	EventDone
	// EventError: the vertex failed (Err), or was stopped because
	// another step failed first or the build was cancelled (Err is then
	// context.Canceled; only the first failure is reported as one).
	EventError
	// EventWarning: a non-fatal finding (Message, Location when tied to a
	// line); Vertex is 0.
	EventWarning
)

// Event is one progress report of a build. The builder delivers events to
// Request.Progress one at a time (calls never overlap, even when stages run
// concurrently), in the order they happen.
type Event struct {
	Kind EventKind
	// Vertex numbers the unit of work like BuildKit's "#N": unique within
	// a build, assigned in start order.
	Vertex int
	// Name is the vertex's display name, e.g. "[builder 2/4] COPY a/ ./",
	// "[internal] load build definition from Dockerfile" or
	// "exporting to image".
	Name string
	// Stage is the stage's display name, Step its 1-based position among
	// the stage's steps that BuildKit counts (FROM and filesystem steps)
	// and Steps their number; all zero for internal vertices.
	Stage       string
	Step, Steps int
	Location    Location
	Time        time.Time
	Duration    time.Duration // Cached, Done, Error
	Stream      int           // Log: 1 stdout, 2 stderr
	Data        []byte        // Log
	Message     string        // Status, Warning
	Current     int64         // Status: bytes done, when known
	Total       int64         // Status: bytes expected, when known
	Err         error         // Error
	// Key is the step's cache key (Start onwards, for steps).
	Key v1.Hash
}

// ProgressFunc receives build events; see [Event] for the guarantees.
type ProgressFunc func(Event)
