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
# Environment: BENCHTIME (go test -benchtime, default 3x), BENCHCOUNT (go
# test -count, default 3); MINIBUILD_BENCH_DIR (generated fixtures, kept
# between runs; default ${TMPDIR:-/tmp}/minibuild-bench). The corpus
# section: see scripts/bench-corpus.sh (RUNS, FAST_RUNS, PROJECTS,
# BENCH_DEBIAN=1; data under MINIBUILD_BENCH_DATA, default
# /var/tmp/minibuild-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-$(scripts/ensure-go.sh)}
export GOFLAGS=${GOFLAGS:--buildvcs=false}

SECTIONS=(layer corpus)

machine() {
	echo "date:    $(date -u +%Y-%m-%dT%H:%MZ)"
	echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f", $2/1048576}' /proc/meminfo) GiB RAM, Linux $(uname -r)"
	echo "go:      $("$GO" env GOVERSION)"
	echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min; other work on the machine makes MB/s noisy, MB/cpu-s less so)"
}

# gobench_table turns `go test -bench` lines into a Markdown table with one
# column per reported unit. With -count > 1 a cell is the median of the runs
# and "best MB/s" the fastest run: on a shared machine the fastest run is
# the one least disturbed by others.
gobench_table() {
	awk '
	function median(name, unit,    n, i, j, t, a) {
		n = cnt[name, unit]
		for (i = 1; i <= n; i++) a[i] = v[name, unit, i] + 0
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	/^Benchmark/ {
		name = $1; sub(/^Benchmark/, "", name); sub(/-[0-9]+$/, "", name)
		if (!(name in seenName)) { seenName[name] = 1; names[++nn] = name }
		runs[name]++
		for (i = 3; i < NF; i += 2) {
			unit = $(i + 1)
			if (!(unit in seen)) { seen[unit] = 1; units[++nu] = unit }
			v[name, unit, ++cnt[name, unit]] = $i
			if (unit == "MB/s" && $i + 0 > best[name]) best[name] = $i + 0
		}
	}
	END {
		if (nn == 0) exit
		head = "| benchmark | runs"; sep = "|---|---:"
		for (u = 1; u <= nu; u++) { head = head " | " units[u]; sep = sep "|---:" }
		if (seen["MB/s"]) { head = head " | best MB/s"; sep = sep "|---:" }
		print head " |"; print sep "|"
		for (n = 1; n <= nn; n++) {
			row = "| " names[n] " | " runs[names[n]]
			for (u = 1; u <= nu; u++) row = row " | " sprintf("%.4g", median(names[n], units[u]))
			if (seen["MB/s"]) row = row " | " sprintf("%.4g", best[names[n]])
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
	out=$("$GO" test -run '^$' -bench '^BenchmarkDiff$' -benchtime "${BENCHTIME:-3x}" -count "${BENCHCOUNT:-3}" ./layer)
	echo "$out" | grep -E '^(Benchmark|cpu:)' || true
	echo
	echo "$out" | gobench_table
	echo "$out" | grep -qE '^(ok|PASS)' || { echo "$out" >&2; return 1; }
}

# bench_corpus: every bench/corpus project built by bin/minibuild, cold /
# no-op / edit / base change, the RUN true step, 03 with --jobs 1 and 2, peak
# RSS of 07: one table against BuildKit's figures (scripts/bench-corpus.sh
# says how; RUNS, FAST_RUNS, PROJECTS, BENCH_DEBIAN=1 for 05).
bench_corpus() {
	echo "== corpus: builds of bench/corpus (median of runs, against BuildKit)"
	BENCH_COMMAND="scripts/bench.sh${ARGS:+ $ARGS}" scripts/bench-corpus.sh
}

ARGS="$*"
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
