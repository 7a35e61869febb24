package main

import (
	"bytes"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"minibuild/builder/inspect"
)

func TestHistoryCreated(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		t     time.Time
		human bool
		want  string
	}{
		{time.Time{}, true, "N/A"},
		{time.Date(1980, 1, 2, 0, 0, 0, 0, time.UTC), true, "1980-01-02"},
		{time.Unix(0, 0), true, "1970-01-01"},
		{now.Add(-3 * 24 * time.Hour), true, "3 days ago"},
		{now.Add(-3 * 24 * time.Hour), false, "2024-04-28T12:00:00Z"},
	}
	for _, tt := range tests {
		if got := historyCreated(tt.t, now, tt.human); got != tt.want {
			t.Errorf("historyCreated(%v, human=%v) = %q, want %q", tt.t, tt.human, got, tt.want)
		}
	}
}

func TestPrintHistory(t *testing.T) {
	t.Parallel()
	epoch := time.Date(1980, 1, 2, 0, 0, 0, 0, time.UTC)
	rows := []inspect.HistoryEntry{
		{Created: epoch, CreatedBy: `CMD ["sh"]`, EmptyLayer: true},
		{Created: epoch, CreatedBy: "RUN /bin/sh -c dd if=/dev/zero bs=1024 count=1024 of=/data/one # buildkit",
			Comment: "buildkit.dockerfile.v0", Layer: 1, Digest: v1.Hash{Algorithm: "sha256", Hex: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}, Size: 1 << 20},
	}
	var buf bytes.Buffer
	if err := printHistory(&buf, rows, historyFormat{human: true}); err != nil {
		t.Fatal(err)
	}
	want := `LAYER          CREATED      CREATED BY                                      SIZE     COMMENT
<missing>      1980-01-02   CMD ["sh"]                                      0B
0123456789ab   1980-01-02   RUN /bin/sh -c dd if=/dev/zero bs=1024 count…   1.05MB   buildkit.dockerfile.v0
`
	if got := buf.String(); got != want {
		t.Errorf("printHistory() =\n%s\nwant\n%s", got, want)
	}
}
