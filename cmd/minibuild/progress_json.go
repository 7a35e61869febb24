package main

import (
	"encoding/json"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"minibuild/builder"
)

// jsonEvent is one line of --progress=rawjson. The field names are a
// stable interface for CI tools and are listed in `minibuild build
// --help`; add fields, never rename them.
type jsonEvent struct {
	Time       string   `json:"time"`
	Kind       string   `json:"kind"`
	Vertex     int      `json:"vertex,omitempty"`
	Name       string   `json:"name,omitempty"`
	Stage      string   `json:"stage,omitempty"`
	Step       int      `json:"step,omitempty"`
	Steps      int      `json:"steps,omitempty"`
	Line       int      `json:"line,omitempty"`
	LineEnd    int      `json:"line_end,omitempty"`
	Key        string   `json:"key,omitempty"`
	Stream     int      `json:"stream,omitempty"`
	Data       string   `json:"data,omitempty"`
	Message    string   `json:"message,omitempty"`
	Current    int64    `json:"current,omitempty"`
	Total      int64    `json:"total,omitempty"`
	DurationMS *float64 `json:"duration_ms,omitempty"`
	Error      string   `json:"error,omitempty"`
	Digest     string   `json:"digest,omitempty"`
	Config     string   `json:"config,omitempty"`
	Tags       []string `json:"tags,omitempty"`
}

// jsonKind names an event kind in rawjson.
func jsonKind(k builder.EventKind) string {
	switch k {
	case builder.EventStart:
		return "start"
	case builder.EventLog:
		return "log"
	case builder.EventStatus:
		return "status"
	case builder.EventCached:
		return "cached"
	case builder.EventDone:
		return "done"
	case builder.EventError:
		return "error"
	case builder.EventWarning:
		return "warning"
	}
	return "unknown"
}

// jsonRenderer writes one JSON object per event and a last one for the
// build's outcome ("result" or "failure").
type jsonRenderer struct {
	enc *json.Encoder
	now func() time.Time
}

func newJSONRenderer(w io.Writer) *jsonRenderer {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &jsonRenderer{enc: enc, now: time.Now}
}

func (r *jsonRenderer) event(ev builder.Event) {
	t := ev.Time
	if t.IsZero() {
		t = r.now()
	}
	je := jsonEvent{
		Time:    t.UTC().Format(time.RFC3339Nano),
		Kind:    jsonKind(ev.Kind),
		Vertex:  ev.Vertex,
		Name:    ev.Name,
		Stage:   ev.Stage,
		Step:    ev.Step,
		Steps:   ev.Steps,
		Line:    ev.Location.Start,
		LineEnd: max(ev.Location.End, ev.Location.Start),
		Stream:  ev.Stream,
		Data:    string(ev.Data),
		Message: ev.Message,
		Current: ev.Current,
		Total:   ev.Total,
	}
	if ev.Key != (v1.Hash{}) {
		je.Key = ev.Key.String()
	}
	switch ev.Kind {
	case builder.EventCached, builder.EventDone, builder.EventError:
		ms := millis(ev.Duration)
		je.DurationMS = &ms
	}
	if ev.Kind == builder.EventError {
		je.Error = errText(ev.Err)
	}
	r.enc.Encode(je) // a broken pipe must not stop the build
}

func (r *jsonRenderer) finish(res *builder.Result, err error) {
	je := jsonEvent{Time: r.now().UTC().Format(time.RFC3339Nano)}
	switch {
	case err != nil:
		je.Kind, je.Error = "failure", err.Error()
	case res != nil:
		je.Kind = "result"
		je.Digest, je.Config, je.Tags = res.Manifest.Digest.String(), res.Config.String(), res.Tags
	default:
		return
	}
	r.enc.Encode(je)
}
