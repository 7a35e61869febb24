#!/usr/bin/env bash
# bench.sh [SECTION...] — run minibuild's benchmarks and print their figures.
#
#   scripts/bench.sh            every section, in the order of SECTIONS
#   scripts/bench.sh layer      one section (several may be named)
#
# Each section is a function bench_<name> below; to add one, write the
# function and append its name to SECTIONS. The header printed first (date,
# machine, Go, load) goes into BENCHMARKS.md with the figures.
#
# Environment: BENCHTIME (go test -benchtime, default 3x); MINIBUILD_BENCH_DIR
# (generated fixtures, kept between runs; default ${TMPDIR:-/tmp}/minibuild-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-$(scripts/ensure-go.sh)}
export GOFLAGS=${GOFLAGS:--buildvcs=false}

SECTIONS=(layer)

machine() {
	echo "date:    $(date -u +%Y-%m-%dT%H:%MZ)"
	echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f", $2/1048576}' /proc/meminfo) GiB RAM, Linux $(uname -r)"
	echo "go:      $("$GO" env GOVERSION)"
	echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min; other work on the machine makes MB/s noisy, MB/cpu-s less so)"
}

# gobench_table turns `go test -bench` lines into a Markdown table with one
# column per reported unit.
gobench_table() {
	awk '
	/^Benchmark/ {
		name = $1; sub(/^Benchmark/, "", name); sub(/-[0-9]+$/, "", name)
		row = "| " name
		for (i = 3; i < NF; i += 2) {
			unit = $(i + 1)
			if (!(unit in seen)) { seen[unit] = 1; units[++nu] = unit }
			val[name, unit] = $i
		}
		names[++nn] = name
	}
	END {
		if (nn == 0) exit
		head = "| benchmark"; sep = "|---"
		for (u = 1; u <= nu; u++) { head = head " | " units[u]; sep = sep "|---:" }
		print head " |"; print sep "|"
		for (n = 1; n <= nn; n++) {
			row = "| " names[n]
			for (u = 1; u <= nu; u++) row = row " | " val[names[n], units[u]]
			print row " |"
		}
	}'
}

# bench_layer: layer.Diff on a 1 GiB incompressible file and on a tree of
# 20,000 small files (bench/corpus/02-many-files), gzip / none / zstd, into
# io.Discard. Targets: gzip >= 150 MB/s, none >= 400 MB/s, memory flat.
bench_layer() {
	echo "== layer: layer.Diff throughput"
	local out
	out=$("$GO" test -run '^$' -bench '^BenchmarkDiff$' -benchtime "${BENCHTIME:-3x}" -count 1 ./layer)
	echo "$out" | grep -E '^(Benchmark|cpu:)' || true
	echo
	echo "$out" | gobench_table
	echo "$out" | grep -qE '^(ok|PASS)' || { echo "$out" >&2; return 1; }
}

run=("$@")
[[ ${#run[@]} -gt 0 ]] || run=("${SECTIONS[@]}")
for s in "${run[@]}"; do
	declare -F "bench_$s" >/dev/null || { echo "bench.sh: unknown section '$s' (sections: ${SECTIONS[*]})" >&2; exit 2; }
done
machine
for s in "${run[@]}"; do
	echo
	"bench_$s"
done
