package inspect

import (
	"archive/tar"
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBloatCorpus01(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	im := corpus01(t, s, "seed")
	r, err := im.Bloat(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const base = 100_000
	if r.TotalBytes != base+5*mib || r.WastedBytes != 4*mib || r.VisibleBytes != base+mib {
		t.Errorf("Bloat() total, wasted, visible = %d, %d, %d, want %d, %d, %d",
			r.TotalBytes, r.WastedBytes, r.VisibleBytes, base+5*mib, 4*mib, base+mib)
	}
	if want := float64(base+mib) / float64(base+5*mib); r.Efficiency != want {
		t.Errorf("Bloat().Efficiency = %v, want %v", r.Efficiency, want)
	}
	type row struct {
		Layer         int
		Instruction   string
		Base          bool
		Bytes, Hidden int64
		Wasted        int64
		ByKind        map[WasteKind]int64
		Hint          string
	}
	var got []row
	for _, l := range r.Layers {
		got = append(got, row{l.Layer, l.Instruction, l.Base, l.Bytes, l.Hidden, l.Wasted, l.WastedByKind, l.Hint})
	}
	want := []row{
		{1, "ADD rootfs /", true, base, 0, 0, nil, ""},
		{2, "RUN mkdir /data", false, 0, 0, 0, nil, ""},
		{3, "RUN dd if=/dev/zero bs=1024 count=1024 of=/data/one", false, mib, mib, 0, nil, ""},
		{4, "RUN chmod -R 0777 /data", false, mib, mib, mib, map[WasteKind]int64{WasteCopiedUp: mib}, hintChmod},
		{5, "RUN dd if=/dev/zero bs=1024 count=1024 of=/data/two", false, mib, mib, 0, nil, ""},
		{6, "RUN chmod -R 0777 /data", false, 2 * mib, mib, 2 * mib, map[WasteKind]int64{WasteCopiedUp: 2 * mib}, hintChmod},
		{7, "RUN rm /data/one", false, 0, 0, mib, map[WasteKind]int64{WasteDeleted: mib}, hintDelete},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Bloat().Layers mismatch (-want +got):\n%s", diff)
	}
	wantOff := []Offender{
		{Path: "/data/one", Bytes: 3 * mib, Versions: []Waste{
			{Path: "/data/one", Bytes: mib, Kind: WasteCopiedUp, WrittenBy: 3, HiddenBy: 4},
			{Path: "/data/one", Bytes: mib, Kind: WasteCopiedUp, WrittenBy: 4, HiddenBy: 6},
			{Path: "/data/one", Bytes: mib, Kind: WasteDeleted, WrittenBy: 6, HiddenBy: 7},
		}},
		{Path: "/data/two", Bytes: mib, Versions: []Waste{
			{Path: "/data/two", Bytes: mib, Kind: WasteCopiedUp, WrittenBy: 5, HiddenBy: 6},
		}},
	}
	if diff := cmp.Diff(wantOff, r.Offenders); diff != "" {
		t.Errorf("Bloat().Offenders mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{hintChmod, hintDelete}, r.Hints); diff != "" {
		t.Errorf("Bloat().Hints mismatch (-want +got):\n%s", diff)
	}
}

func TestBloatKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		steps  []step
		wasted map[int]map[WasteKind]int64 // layer (the base is 1) → kind → bytes
		hints  []string
	}{
		{
			name: "overwrite with other content",
			steps: []step{
				runStep("echo a > /f", file("f", "aaaa")),
				runStep("echo bb > /f", file("f", "bb")),
			},
			wasted: map[int]map[WasteKind]int64{3: {WasteOverwritten: 4}},
			hints:  []string{hintOverwrite},
		},
		{
			name: "touch rewrites the same bytes",
			steps: []step{
				runStep("echo a > /f", file("f", "aaaa")),
				runStep("touch /f", file("f", "aaaa")),
			},
			wasted: map[int]map[WasteKind]int64{3: {WasteCopiedUp: 4}},
			hints:  []string{hintCopyUp},
		},
		{
			name: "deleted directory",
			steps: []step{
				runStep("make", dir("d", 0o755), file("d/a", "123"), dir("d/e", 0o755), file("d/e/b", "45")),
				runStep("rm -rf /d", whiteout("", "d")),
			},
			wasted: map[int]map[WasteKind]int64{3: {WasteDeleted: 5}},
			hints:  []string{hintDelete},
		},
		{
			name: "opaque directory",
			steps: []step{
				runStep("make", dir("d", 0o755), file("d/a", "123"), file("d/b", "45")),
				runStep("rm -rf /d && mkdir /d && echo x > /d/b", dir("d", 0o755), opaque("d"), file("d/b", "x")),
			},
			wasted: map[int]map[WasteKind]int64{3: {WasteDeleted: 5}},
			hints:  []string{hintDelete},
		},
		{
			name: "directory replaced by a file",
			steps: []step{
				runStep("make", dir("d", 0o755), file("d/a", "123")),
				runStep("rm -r /d && echo > /d", file("d", "")),
			},
			wasted: map[int]map[WasteKind]int64{3: {WasteDeleted: 3}},
			hints:  []string{hintDelete},
		},
		{
			name: "a hardlink keeps the bytes",
			steps: []step{
				runStep("make", file("a", "123"), tf{name: "b", typ: tar.TypeLink, link: "a"}),
				runStep("rm /a", whiteout("", "a")),
			},
			wasted: map[int]map[WasteKind]int64{},
		},
		{
			name: "the last hardlink goes",
			steps: []step{
				runStep("make", file("a", "123"), tf{name: "b", typ: tar.TypeLink, link: "a"}),
				runStep("rm /a /b", whiteout("", "a"), whiteout("", "b")),
			},
			wasted: map[int]map[WasteKind]int64{3: {WasteDeleted: 3}},
			hints:  []string{hintDelete},
		},
		{
			name: "deleting base files",
			steps: []step{
				runStep("rm /bin/busybox", dir("bin", 0o755), whiteout("bin", "busybox")),
			},
			wasted: map[int]map[WasteKind]int64{2: {WasteDeleted: 100_000}},
			hints:  []string{hintFromBase},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			im := build(t, s, busybox(t, s, "base"), "app", tt.steps...)
			r, err := im.Bloat(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			got := map[int]map[WasteKind]int64{}
			var sum int64
			for _, l := range r.Layers {
				if l.Wasted > 0 {
					got[l.Layer] = l.WastedByKind
					sum += l.Wasted
				}
			}
			if diff := cmp.Diff(tt.wasted, got); diff != "" {
				t.Errorf("wasted by layer mismatch (-want +got):\n%s", diff)
			}
			if sum != r.WastedBytes || r.TotalBytes-r.WastedBytes != r.VisibleBytes {
				t.Errorf("Bloat() total %d, visible %d, wasted %d, layers' wasted %d: do not add up", r.TotalBytes, r.VisibleBytes, r.WastedBytes, sum)
			}
			if diff := cmp.Diff(tt.hints, r.Hints); diff != "" {
				t.Errorf("Bloat().Hints mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIsChmodChown(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{
		"RUN chmod -R 0777 /data":              true,
		"RUN chown -R app: /app && ls":         true,
		"RUN set -e; /bin/chgrp -R 0 /srv":     true,
		"RUN echo chmodding":                   false,
		"COPY --chmod=0755 a /a":               false,
		"RUN make && (cd /x; chmod +x run.sh)": true,
	} {
		if got := isChmodChown(in); got != want {
			t.Errorf("isChmodChown(%q) = %v, want %v", in, got, want)
		}
	}
}
