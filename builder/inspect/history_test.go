package inspect

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHistory(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	im := corpus01(t, s, "seed")
	rows, err := im.History(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		CreatedBy string
		Empty     bool
		Layer     int
		Size      int64
	}
	var got []row
	for _, r := range rows {
		got = append(got, row{r.CreatedBy, r.EmptyLayer, r.Layer, r.Size})
		if r.Layer > 0 {
			l := im.Manifest.Layers[r.Layer-1]
			if r.Digest != l.Digest || r.CompressedSize != l.Size || r.DiffID != im.Config.RootFS.DiffIDs[r.Layer-1] {
				t.Errorf("row %q: digest %s, size %d, diff ID %s; the manifest says %s, %d", r.CreatedBy, r.Digest, r.CompressedSize, r.DiffID, l.Digest, l.Size)
			}
		}
		if !r.Created.Equal(epoch) {
			t.Errorf("row %q: created %v, want %v", r.CreatedBy, r.Created, epoch)
		}
	}
	want := []row{
		{"CMD /bin/sh -c ls -alh /data", true, 0, 0},
		{"RUN /bin/sh -c rm /data/one # buildkit", false, 7, 0},
		{"RUN /bin/sh -c chmod -R 0777 /data # buildkit", false, 6, 2 * mib},
		{"RUN /bin/sh -c dd if=/dev/zero bs=1024 count=1024 of=/data/two # buildkit", false, 5, mib},
		{"RUN /bin/sh -c chmod -R 0777 /data # buildkit", false, 4, mib},
		{"RUN /bin/sh -c dd if=/dev/zero bs=1024 count=1024 of=/data/one # buildkit", false, 3, mib},
		{"RUN /bin/sh -c mkdir /data # buildkit", false, 2, 0},
		{"CMD sh", true, 0, 0},
		{"ADD rootfs / # buildkit", false, 1, 100_000},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("History() mismatch (-want +got):\n%s", diff)
	}
}

func TestHistoryWithoutEntries(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	im := build(t, s, nil, "bare", runStep("x", file("a", "12")), runStep("y", file("b", "345")))
	im.Config.History = nil // as some importers write images
	rows, err := im.History(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Layer != 2 || rows[0].Size != 3 || rows[1].Layer != 1 || rows[1].Size != 2 {
		t.Errorf("History() of an image without history = %+v, want one row per layer, newest first", rows)
	}
}

func TestInstruction(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"RUN /bin/sh -c chmod -R 0777 /data # buildkit":       "RUN chmod -R 0777 /data",
		"RUN |2 A=1 B=two /bin/sh -c make all # buildkit":     "RUN make all",
		"RUN /bin/bash -o pipefail -c curl x | sh # buildkit": "RUN /bin/bash -o pipefail -c curl x | sh",
		"COPY app /app # buildkit":                            "COPY app /app",
		`/bin/sh -c #(nop)  CMD ["sh"]`:                       `CMD ["sh"]`,
		"/bin/sh -c apk add curl":                             "RUN apk add curl",
		"ENV PATH=/x:/y":                                      "ENV PATH=/x:/y",
		"":                                                    "",
	} {
		if got := Instruction(in); got != want {
			t.Errorf("Instruction(%q) = %q, want %q", in, got, want)
		}
	}
}
