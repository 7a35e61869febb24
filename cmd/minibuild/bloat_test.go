package main

import (
	"errors"
	"strings"
	"testing"

	"minibuild/builder/inspect"
)

func TestParseSize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{
		"0": 0, "1048576": 1048576, "10MB": 10_000_000, "4.19MB": 4_190_000, "1MiB": 1 << 20,
		"1.5GiB": 3 << 29, "512k": 512_000, "2 kB": 2000, "7b": 7,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MB", "-1", "10XB", "1e400", "ten"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestParseRatio(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]float64{"95%": 0.95, "95": 0.95, "0.95": 0.95, "1": 1, "100%": 1, "0": 0, "50.5": 0.505} {
		if got, err := parseRatio(in); err != nil || got != want {
			t.Errorf("parseRatio(%q) = %v, %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "101", "-5%", "x", "NaN"} {
		if got, err := parseRatio(in); err == nil {
			t.Errorf("parseRatio(%q) = %v, want an error", in, got)
		}
	}
}

func TestBloatGate(t *testing.T) {
	t.Parallel()
	r := &inspect.BloatReport{WastedBytes: 4 << 20, Efficiency: 0.215}
	tests := []struct {
		max, min string
		fails    []string
	}{
		{"", "", nil},
		{"5MB", "20%", nil},
		{"4MB", "", []string{"exceeds --max-wasted 4MB"}},
		{"", "0.3", []string{"below --min-efficiency 30.0%"}},
		{"1MiB", "90", []string{"exceeds --max-wasted 1.05MB", "below --min-efficiency 90.0%"}},
	}
	for _, tt := range tests {
		g, err := parseGate(bloatOptions{maxWasted: tt.max, minEfficiency: tt.min})
		if err != nil {
			t.Fatal(err)
		}
		err = g.check(r)
		var ee *exitError
		switch {
		case tt.fails == nil && err != nil:
			t.Errorf("gate %q %q: %v, want a pass", tt.max, tt.min, err)
		case tt.fails != nil && (!errors.As(err, &ee) || ee.code != exitGate):
			t.Errorf("gate %q %q: %v, want exit %d", tt.max, tt.min, err, exitGate)
		}
		for _, f := range tt.fails {
			if err == nil || !strings.Contains(err.Error(), f) {
				t.Errorf("gate %q %q: %v, want it to say %q", tt.max, tt.min, err, f)
			}
		}
	}
}

func TestBar(t *testing.T) {
	t.Parallel()
	ascii, fancy := bloatStyle{}, bloatStyle{unicode: true}
	tests := []struct {
		st                    bloatStyle
		kept, hidden, biggest int64
		want                  string
	}{
		{ascii, 0, 0, 100, "          "},
		{ascii, 100, 0, 100, "##########"},
		{ascii, 50, 50, 100, "#####....."},
		{ascii, 1, 0, 100, "#         "},
		{ascii, 0, 1, 100, ".         "},
		{fancy, 100, 0, 100, "██████████"},
		{fancy, 55, 0, 100, "█████▌    "},
		{fancy, 30, 70, 100, "███░░░░░░░"},
		{fancy, 0, 0, 0, "          "},
	}
	for _, tt := range tests {
		if got := tt.st.bar(tt.kept, tt.hidden, tt.biggest, 10); got != tt.want {
			t.Errorf("bar(%d, %d, %d) unicode=%v = %q, want %q", tt.kept, tt.hidden, tt.biggest, tt.st.unicode, got, tt.want)
		}
	}
}

func TestHiddenBy(t *testing.T) {
	t.Parallel()
	got := hiddenBy([]inspect.Waste{
		{Kind: inspect.WasteCopiedUp, HiddenBy: 4}, {Kind: inspect.WasteCopiedUp, HiddenBy: 6}, {Kind: inspect.WasteDeleted, HiddenBy: 7},
	})
	if want := "copied up by layers 4, 6; deleted by layer 7"; got != want {
		t.Errorf("hiddenBy() = %q, want %q", got, want)
	}
}
