#!/usr/bin/env bash
# bench-corpus.sh — the corpus benchmark of `make bench` (section "corpus"
# of scripts/bench.sh): every project of bench/corpus built by bin/minibuild
# in the scenarios of the peer baselines, plus the figures the issues ask
# for, printed as one Markdown table next to BuildKit's numbers.
#
#   scripts/bench-corpus.sh [run]      measure, then print the table
#   scripts/bench-corpus.sh report [F] print the table of a saved summary
#                                      (default: the latest)
#
# Scenarios (per project, runs in this order; a run's preparation is not
# timed):
#   cold        store wiped, bases re-imported, synced; then a build
#   noop        the same build again, nothing changed
#   edit        a line appended to the bench.conf EDIT file, then a build
#   basechange  (04) "busybox" retagged to a new variant (the base plus one
#               small COPY layer, built by minibuild), then a build: the
#               COPY --link layers must be cache hits and keep their digests
# and, besides: 03 cold with --jobs 1 (interleaved with its --jobs 2 cold
# runs), peak RSS of every cold build (GNU time), and the RUN true step:
# FROM busybox + 100 × `RUN true` built with --no-cache, interleaved with
# FROM busybox + ENV built the same way.
#
# Data (kept between runs, never committed) under $MINIBUILD_BENCH_DATA
# (default /var/tmp/minibuild-bench):
#   bases/      OCI layouts from bench/make-bases.sh
#   gen/P/      output of P's gen.sh; regenerated when gen.sh changes
#               (gen/P.stamp holds gen.sh's sha256)
#   work/P/     the project copied with its generated data (edits go here)
#   store/      the minibuild store (--root) of the project being measured
#   trash/      stores and work dirs of this run, deleted after all runs
#   results/    corpus-STAMP.jsonl (one record per run), corpus-STAMP.json
#               (summary), corpus-latest.json
#
# Environment:
#   RUNS=3          cold runs (and base-change / RUN true runs)
#   FAST_RUNS=10    no-op and edit runs
#   PROJECTS="01-seed-layers …"  subset (default: every bench/corpus/0*)
#   BENCH_DEBIAN=1  also make the debian:bookworm base (debootstrap, needs the
#                   Debian mirror, ~1 min the first time) and run 05
#   RUN_TRUE=0      skip the RUN true measurement
#   MINIBUILD_BIN   the binary (default: bin/minibuild, built by `make build`
#                   when unset; `make bench` sets it)
# Needs root, python3 (gen.sh), jq, GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
export LC_ALL=C

DATA=${MINIBUILD_BENCH_DATA:-/var/tmp/minibuild-bench}
RUNS=${RUNS:-3}
FAST_RUNS=${FAST_RUNS:-10}
BENCH_DEBIAN=${BENCH_DEBIAN:-0}
RUN_TRUE=${RUN_TRUE:-1}
CORPUS=$REPO/bench/corpus
BASES=$DATA/bases
GEN=$DATA/gen
WORK=$DATA/work
STORE=$DATA/store
RES=$DATA/results
GNU_TIME=/usr/bin/time

# Peer baselines, seconds, copied from the shared benchmark kit's README
# ("Baselines measured on this machine kind (2 cores, seconds)"): BuildKit
# v0.32 (buildkitd, overlayfs snapshotter, runc, gzip export), median of
# runs. 04 basechange: "BuildKit rebuilds 04 after a base change in 0.55 s
# with --link".
BASELINES='{
  "source": "shared bench kit README, BuildKit v0.32 (buildkitd, overlayfs snapshotter, runc, gzip export), median, 2-core VM",
  "buildkit": {
    "01-seed-layers": {"cold": 1.82,  "noop": 0.14},
    "02-many-files":  {"cold": 14.24, "noop": 1.31, "edit": 1.09},
    "03-multistage":  {"cold": 4.70,  "noop": 0.13, "edit": 0.20},
    "04-copy-link":   {"cold": 3.84,  "noop": 0.14, "edit": 1.28, "basechange": 0.55},
    "05-debian-apt":  {"cold": 16.03, "noop": 0.15, "edit": 0.20},
    "06-metadata":    {"cold": 0.58,  "noop": 0.13, "edit": 0.19},
    "07-big-layer":   {"cold": 20.27, "noop": 0.13, "edit": 0.18}
  }
}'

# Targets: row key -> [op, limit, unit, where it comes from]. Seconds
# unless the unit says otherwise. Every no-op not listed: <= 0.050 s.
TARGETS='{
  "02-many-files/noop":    ["<=", 0.100, "s",  "issue 6 (BuildKit 1.31 s)"],
  "02-many-files/edit":    ["<=", 0.150, "s",  "issue 6 (BuildKit 1.09 s)"],
  "02-many-files/cold":    ["<=", 4.747, "s",  ">= 3x BuildKit (14.24 s)"],
  "03-multistage/cold":    ["<=", 3.133, "s",  ">= 1.5x BuildKit (4.70 s)"],
  "03-multistage/jobs":    [">=", 1.6,   "x",  "issue 7: --jobs 2 >= 1.6x faster than --jobs 1"],
  "04-copy-link/cold":     ["<=", 2.560, "s",  ">= 1.5x BuildKit (3.84 s)"],
  "04-copy-link/basechange": ["<=", 0.300, "s", "issue 7 (BuildKit 0.55 s)"],
  "07-big-layer/cold":     ["<=", 10.0,  "s",  "issue 5 (BuildKit 20.27 s)"],
  "07-big-layer/rss":      ["<=", 200,   "MB", "issue 5: peak RSS"],
  "RUN true/step-wall":    ["<=", 20,    "ms", "issue 5"],
  "*/noop":                ["<=", 0.050, "s",  "issue 6: every no-op"]
}'

log() { printf '[bench-corpus %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

conf() { # conf PROJECT KEY: a bench.conf value
	(DESC='' BASE='' EDIT='' NET=''; source "$CORPUS/$1/bench.conf"; printf '%s' "${!2}")
}

load1() { cut -d' ' -f1 /proc/loadavg; }

# ------------------------------------------------------------ setup

ensure_binary() {
	if [[ -z ${MINIBUILD_BIN:-} ]]; then
		make -s build >&2 # as `make bench` builds it (with the embedded init)
		MINIBUILD_BIN=$REPO/bin/minibuild
	fi
	MB=$(realpath "$MINIBUILD_BIN")
	[[ -x $MB ]] || die "$MB is not executable"
}

# ensure_bases: busybox always, debian:bookworm with BENCH_DEBIAN=1. The
# layouts are kept; make-bases.sh skips what exists.
ensure_bases() {
	local skip=1
	[[ $BENCH_DEBIAN == 1 ]] && skip=0
	MINIBUILD_PEERS_DATA=$DATA SKIP_DEBIAN=$skip bash bench/make-bases.sh 2> >(sed 's/^/  /' >&2)
	[[ -f $BASES/busybox/index.json ]] || die "no busybox layout in $BASES"
	if [[ $BENCH_DEBIAN == 1 ]]; then
		[[ -f $BASES/debian-bookworm/index.json ]] || die "no debian-bookworm layout in $BASES"
	fi
}

# ensure_gen PROJECT: its gen.sh output under gen/, made once per gen.sh.
ensure_gen() {
	local p=$1 g=$CORPUS/$1/gen.sh sum
	[[ -f $g ]] || return 0
	sum=$(sha256sum "$g" | cut -d' ' -f1)
	if [[ -d $GEN/$p && $(cat "$GEN/$p.stamp" 2>/dev/null) == "$sum" ]]; then
		return 0
	fi
	log "$p: generating its data (gen.sh) into $GEN/$p"
	rm -rf "$GEN/$p.tmp" "$GEN/$p.stamp"
	mkdir -p "$GEN"
	bash "$g" "$GEN/$p.tmp" >&2
	rm -rf "$GEN/$p"
	mv "$GEN/$p.tmp" "$GEN/$p"
	echo "$sum" >"$GEN/$p.stamp"
}

# fresh_work PROJECT: a writable copy of the project and its generated data.
fresh_work() {
	local p=$1
	to_trash "$WORK/$p"
	mkdir -p "$WORK/$p"
	if [[ -d $GEN/$p ]]; then cp -a "$GEN/$p/." "$WORK/$p/"; fi
	cp -a "$CORPUS/$p/." "$WORK/$p/"
	chmod -R u+w "$WORK/$p"
}

# to_trash DIR: move DIR aside, to be deleted after all the runs: deleting
# tens of thousands of files just before a timed build would leave the
# disk busy and, on ext4 without a journal (this VM), make the build's
# inode allocations skip the recently freed inodes one by one.
to_trash() {
	[[ -e $1 ]] || return 0
	mkdir -p "$DATA/trash"
	mv "$1" "$DATA/trash/$(basename "$1")-$EPOCHREALTIME"
}

# empty_trash: delete what to_trash moved aside (not timed).
empty_trash() {
	rm -rf "${DATA:?}/trash"
	sync
}

# wipe: an empty store holding only the imported bases, written to disk.
wipe() {
	if grep -qF " $STORE/" /proc/self/mountinfo; then
		die "mounts left under $STORE: $(grep -F " $STORE/" /proc/self/mountinfo | head -3)"
	fi
	to_trash "$STORE"
	"$MB" --root "$STORE" import "$BASES/busybox" -t busybox >/dev/null
	if [[ $BENCH_DEBIAN == 1 ]]; then
		"$MB" --root "$STORE" import "$BASES/debian-bookworm" -t debian:bookworm >/dev/null
	fi
	sync
}

# ------------------------------------------------------------ one build

# build CTX [build flags…]: one timed build of CTX into the store. Sets
# B_SECONDS (wall clock, µs resolution), B_CPU (user + system seconds of
# the build's processes), B_RSS_KB (peak RSS, with MEASURE_RSS=1),
# B_STEPS, B_MISSED, B_STEP_MS (median step duration the builder reports)
# and B_STEPLIST (name, cached, ms of every step, JSON). Returns the
# build's exit code; its stderr is in $TMPD/build.log.
build() {
	local ctx=$1 t0 t1 rc=0 TIMEFORMAT='%3U %3S'
	shift
	local cmd=("$MB" --root "$STORE" build --progress=quiet --metadata-file "$TMPD/md.json" "$@" "$ctx")
	rm -f "$TMPD/md.json" "$TMPD/rss"
	B_RSS_KB=0
	t0=$EPOCHREALTIME
	if [[ ${MEASURE_RSS:-0} == 1 ]]; then
		{ time "$GNU_TIME" -f %M -o "$TMPD/rss" "${cmd[@]}" 2>"$TMPD/build.log" || rc=$?; } 2>"$TMPD/cpu"
	else
		{ time "${cmd[@]}" 2>"$TMPD/build.log" || rc=$?; } 2>"$TMPD/cpu"
	fi
	t1=$EPOCHREALTIME
	B_SECONDS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')
	B_CPU=$(awk '{ printf "%.3f", $1 + $2 }' "$TMPD/cpu")
	if [[ -s $TMPD/rss ]]; then B_RSS_KB=$(tail -n1 "$TMPD/rss"); fi
	if ((rc != 0)); then
		log "build of $ctx failed (exit $rc):"
		tail -n 15 "$TMPD/build.log" | sed 's/^/    /' >&2
		return "$rc"
	fi
	read -r B_STEPS B_MISSED B_STEP_MS < <(jq -r '."minibuild.steps" as $s
		| ([$s[] | .duration_ms] | sort) as $d
		| [($s | length), ([$s[] | select(.cached | not)] | length),
		   (if ($d | length) == 0 then 0 else $d[($d | length) / 2 | floor] end)] | @tsv' "$TMPD/md.json")
	B_STEPLIST=$(jq -c '[."minibuild.steps"[] | [.name, .cached, .duration_ms]]' "$TMPD/md.json")
}

# record PROJECT SCENARIO RUN [CHECK]: append the last build to the run log.
record() {
	jq -nc --arg p "$1" --arg s "$2" --argjson i "$3" --arg check "${4:-}" \
		--argjson sec "$B_SECONDS" --argjson cpu "$B_CPU" --argjson rss "$B_RSS_KB" \
		--argjson steps "$B_STEPS" --argjson missed "$B_MISSED" --argjson stepms "$B_STEP_MS" \
		--argjson load "$(load1)" --argjson list "$B_STEPLIST" \
		'{project: $p, scenario: $s, run: $i, seconds: $sec, cpu_seconds: $cpu, rss_kb: $rss, steps: $steps,
		  missed: $missed, step_ms_median: $stepms, load1: $load, check: $check, step_list: $list}' >>"$RUNLOG"
	local rss=''
	((B_RSS_KB == 0)) || rss=", $((B_RSS_KB / 1024)) MB peak RSS"
	log "$1 $2 #$3: $(printf '%.3f' "$B_SECONDS") s (cpu $B_CPU s, load $(load1)), $B_MISSED/$B_STEPS steps ran$rss${4:+ [$4]}"
}

record_error() { # record_error PROJECT SCENARIO MESSAGE
	jq -nc --arg p "$1" --arg s "$2" --arg m "$3" '{project: $p, scenario: $s, error: $m}' >>"$RUNLOG"
}

# ------------------------------------------------------------ scenarios

# scenario_cold PROJECT CTX: RUNS cold builds (for 03 interleaved with
# --jobs 1 builds). The store is left warm.
scenario_cold() {
	local p=$1 ctx=$2 i
	for ((i = 1; i <= RUNS; i++)); do
		if [[ $p == 03-* ]]; then
			wipe
			MEASURE_RSS=1 build "$ctx" -t "bench/$p" --jobs 1 || { record_error "$p" cold-jobs1 "build failed"; return 1; }
			record "$p" cold-jobs1 "$i"
			wipe
			MEASURE_RSS=1 build "$ctx" -t "bench/$p" --jobs 2 || { record_error "$p" cold "build failed"; return 1; }
		else
			wipe
			MEASURE_RSS=1 build "$ctx" -t "bench/$p" || { record_error "$p" cold "build failed"; return 1; }
		fi
		record "$p" cold "$i"
	done
}

scenario_noop() {
	local p=$1 ctx=$2 i check
	for ((i = 1; i <= FAST_RUNS; i++)); do
		build "$ctx" -t "bench/$p" || { record_error "$p" noop "build failed"; return 1; }
		check=''
		((B_MISSED == 0)) || check="$B_MISSED steps missed the cache"
		record "$p" noop "$i" "$check"
	done
}

scenario_edit() {
	local p=$1 ctx=$2 file i check
	file=$(conf "$p" EDIT)
	[[ -n $file ]] || return 0
	for ((i = 1; i <= FAST_RUNS; i++)); do
		printf '# bench edit %s %s\n' "$i" "$EPOCHREALTIME" >>"$ctx/$file"
		build "$ctx" -t "bench/$p" || { record_error "$p" edit "build failed"; return 1; }
		check=''
		((B_MISSED > 0)) || check="no step ran after the edit"
		record "$p" edit "$i" "$check"
	done
}

link_digests() { # the image's last N layer digests, one line
	"$MB" --root "$STORE" inspect "$1" | jq -r --argjson n "$2" '.[0].Manifest.layers[-$n:] | map(.digest) | join(" ")'
}

# scenario_basechange PROJECT CTX: "busybox" becomes a new variant before
# each run (FROM the imported busybox + COPY of a file unique to the run).
scenario_basechange() {
	local p=$1 ctx=$2 i check ref now nlink hits vctx=$WORK/base-variant
	nlink=$(grep -c -- '^COPY --link' "$ctx/Dockerfile")
	ref=$(link_digests "bench/$p" "$nlink")
	"$MB" --root "$STORE" tag busybox bench/busybox-orig >/dev/null
	rm -rf "$vctx"
	mkdir -p "$vctx"
	printf 'FROM bench/busybox-orig\nCOPY variant /etc/bench-variant\n' >"$vctx/Dockerfile"
	for ((i = 1; i <= RUNS; i++)); do
		printf 'variant %s %s\n' "$i" "$EPOCHREALTIME" >"$vctx/variant"
		"$MB" --root "$STORE" build --progress=quiet -t busybox "$vctx" 2>"$TMPD/build.log" ||
			{ tail "$TMPD/build.log" >&2; record_error "$p" basechange "variant base build failed"; return 1; }
		build "$ctx" -t "bench/$p" || { record_error "$p" basechange "build failed"; return 1; }
		hits=$(jq '[."minibuild.steps"[] | select((.name | test("COPY --link")) and .cached)] | length' "$TMPD/md.json")
		now=$(link_digests "bench/$p" "$nlink")
		check="$hits/$nlink link steps cached"
		[[ $now == "$ref" ]] && check+=", link layers identical" || check+=", LINK LAYERS CHANGED"
		record "$p" basechange "$i" "$check"
	done
}

# scenario_runtrue: FROM busybox + 100 RUN true (--no-cache), interleaved
# with FROM busybox + ENV (--no-cache), on a store with the base unpacked.
scenario_runtrue() {
	local d=$WORK/run-true i
	rm -rf "$d"
	mkdir -p "$d/100" "$d/0"
	{
		echo "FROM busybox"
		for ((i = 0; i < 100; i++)); do echo "RUN true"; done
	} >"$d/100/Dockerfile"
	printf 'FROM busybox\nENV BENCH=1\n' >"$d/0/Dockerfile"
	wipe
	build "$d/0" --no-cache || { record_error "RUN true" warmup "build failed"; return 1; }
	for ((i = 1; i <= RUNS; i++)); do
		build "$d/100" --no-cache || { record_error "RUN true" 100-steps "build failed"; return 1; }
		record "RUN true" 100-steps "$i"
		build "$d/0" --no-cache || { record_error "RUN true" 0-steps "build failed"; return 1; }
		record "RUN true" 0-steps "$i"
	done
}

bench_project() {
	local p=$1 ctx=$WORK/$1
	log "$p: $(conf "$p" DESC)"
	ensure_gen "$p"
	fresh_work "$p"
	scenario_cold "$p" "$ctx"
	scenario_noop "$p" "$ctx"
	scenario_edit "$p" "$ctx"
	if grep -q -- '^COPY --link' "$ctx/Dockerfile"; then
		scenario_basechange "$p" "$ctx"
	fi
	if [[ $p == 05-* ]]; then
		local v
		v=$("$MB" --root "$STORE" run "bench/$p" curl --version 2>&1 | head -n1) || v="minibuild run failed: $v"
		log "$p: minibuild run bench/$p curl --version: $v"
		jq -nc --arg p "$p" --arg v "$v" '{project: $p, scenario: "run", output: $v}' >>"$RUNLOG"
	fi
}

# ------------------------------------------------------------ summary

# summarize RUNLOG META: the summary JSON (rows with median/min/max,
# baseline, ratio and target) on stdout.
summarize() {
	jq -s --argjson base "$BASELINES" --argjson targets "$TARGETS" --argjson meta "$2" '
	def median: sort | if length == 0 then null
		elif length % 2 == 1 then .[length / 2 | floor]
		else (.[length / 2 - 1] + .[length / 2]) / 2 end;
	def stats: {median: median, min: min, max: max, n: length};
	def target($key; $scen):
		($targets[$key] // (if $scen == "noop" then $targets["*/noop"] else null end));
	def judge($t; $v):
		if $t == null or $v == null then null
		elif $t[0] == "<=" then $v <= $t[1] else $v >= $t[1] end;
	def row($p; $s; $lbl; $unit; $vals; $bk; $checks; $runs):
		($vals | stats) as $st
		| target($p + "/" + $s; $s) as $t
		| {project: $p, scenario: $s, label: $lbl, unit: $unit} + $st
		  + {buildkit: $bk,
		     ratio: (if $bk != null and $st.median != null and $st.median > 0 then $bk / $st.median else null end),
		     target: $t, met: judge($t; $st.median),
		     cpu: ([$runs[].cpu_seconds | select(. != null)] | median),
		     load: ([$runs[].load1 | select(. != null)] | median),
		     checks: ($checks | map(select(. != "" and . != null)) | unique)};
	def row($p; $s; $lbl; $unit; $vals; $bk; $checks): row($p; $s; $lbl; $unit; $vals; $bk; $checks; []);
	. as $runs
	| [$runs[] | select(.seconds != null)] as $ok
	| ($ok | map(.project) | unique) as $projects
	| {meta: $meta, baselines: $base, targets: $targets,
	   errors: [$runs[] | select(.error != null)],
	   notes: [$runs[] | select(.output != null)],
	   rows: (
	     [ $projects[] as $p | select($p != "RUN true")
	       | ["cold", "cold-jobs1", "noop", "edit", "basechange"][] as $s
	       | [$ok[] | select(.project == $p and .scenario == $s)] as $r
	       | select($r | length > 0)
	       | row($p; $s; ({cold: "cold", "cold-jobs1": "cold --jobs 1", noop: "no-op", edit: "edit", basechange: "base change"}[$s]);
	             "s"; [$r[].seconds]; $base.buildkit[$p][$s]; [$r[].check]; $r)
	       , (if $s == "cold" and ($p | startswith("07")) then
	            row($p; "rss"; "cold: peak RSS"; "MB"; [$r[].rss_kb / 1024]; null; [])
	          else empty end)
	       , (if $s == "cold-jobs1" then
	            [$ok[] | select(.project == $p and .scenario == "cold")] as $j2
	            | if ($j2 | length) == 0 then empty else
	              ([range(0; [($j2 | length), ($r | length)] | min)] | map($r[.].seconds / $j2[.].seconds)) as $pairs
	              | row($p; "jobs"; "cold: --jobs 1 ÷ --jobs 2"; "x"; $pairs; null; [])
	                + {median: (($r | map(.seconds) | median) / ($j2 | map(.seconds) | median))}
	              | . + {met: judge(.target; .median)} end
	          else empty end)
	     ]
	     + ( [$ok[] | select(.project == "RUN true" and .scenario == "100-steps")] as $h
	         | [$ok[] | select(.project == "RUN true" and .scenario == "0-steps")] as $z
	         | if ($h | length) == 0 then [] else
	           [ 	             row("RUN true"; "step-wall"; "per step: (wall of 100 steps − wall of 0 steps) / 100"; "ms";
	                 ([range(0; [($h | length), ($z | length)] | min)] | map(($h[.].seconds - $z[.].seconds) * 10)); null; []; $h)
	             + {cpu: ([range(0; [($h | length), ($z | length)] | min)]
	                      | map(select($h[.].cpu_seconds != null and $z[.].cpu_seconds != null)
	                            | ($h[.].cpu_seconds - $z[.].cpu_seconds) * 10) | median)},
	             row("RUN true"; "step"; "step time the builder reports (median of 100 steps; not judged: the next sandbox starts during the step before)"; "ms"; [$h[].step_ms_median]; null; []; $h) + {cpu: null} ]
	           end )
	   )}' "$1"
}

# table SUMMARY: the Markdown table.
table() {
	jq -r '
	def fixed($d): (. * pow(10; $d) | round) as $i
		| (if $i < 0 then "-" else "" end) as $sign
		| ($i | fabs | tostring) as $s
		| (if ($s | length) <= $d then ("0" * ($d + 1 - ($s | length)) // "") + $s else $s end) as $s
		| if $d == 0 then $sign + $s else $sign + $s[0:($s | length) - $d] + "." + $s[($s | length) - $d:] end;
	def fmt($u): if . == null then "–"
		elif $u == "s" then (if . < 1 then fixed(3) else fixed(2) end)
		elif $u == "x" then fixed(2) + "×"
		elif $u == "ms" then fixed(1)
		else fixed(0) end;
	def tgt: if . == null then "–" else
		(if .[0] == "<=" then "≤ " else "≥ " end)
		+ (if .[2] == "x" then (.[1] | fmt("x")) elif .[2] == "s" then (.[1] | fmt("s")) + " s" else (.[1] | tostring) + " " + .[2] end) end;
	"| project | scenario | minibuild median (min–max) | CPU s | runs | load | BuildKit | BuildKit ÷ minibuild | target | met |",
	"|---|---|---:|---:|---:|---:|---:|---:|---|:---:|",
	(.rows[] |
	 .unit as $un
	 | (if $un == "s" then " s" elif $un == "x" then "" else " " + $un end) as $u
	 | "| \(.project) | \(.label)\(if (.checks | length) > 0 then " (" + (.checks | join("; ")) + ")" else "" end) | \(.median | fmt($un))\($u) (\(.min | fmt($un))–\(.max | fmt($un))) | \(.cpu | fmt(if $un == "ms" then "ms" else "s" end))\(if .cpu != null and $un == "ms" then " ms" else "" end) | \(.n) | \(if .load then (.load | fixed(1)) else "–" end) | \(if .buildkit then (.buildkit | fmt("s")) + " s" else "–" end) | \(if .ratio then (.ratio | fmt("x")) else "–" end) | \(.target | tgt) | \(if .met == null then "" elif .met then "✓" else "✗" end) |"),
	(if (.errors | length) > 0 then "", "Errors:", (.errors[] | "- \(.project) \(.scenario): \(.error)") else empty end),
	(if (.notes | length) > 0 then "", (.notes[] | "- \(.project): `minibuild run … curl --version`: \(.output)") else empty end)
	' "$1"
}

meta_json() { # meta_json LOAD_START LOAD_END START END
	jq -n --arg date "$3" --arg finish "$4" --arg cmd "${BENCH_COMMAND:-scripts/bench-corpus.sh}" \
		--arg cores "$(nproc)" \
		--arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
		--arg ram "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)" \
		--arg kernel "$(uname -r)" --arg go "$("${GO:-$(scripts/ensure-go.sh)}" env GOVERSION 2>/dev/null || true)" \
		--arg commit "$(git rev-parse --short HEAD 2>/dev/null || true)" \
		--arg dirty "$(git status --porcelain -- builder exec layer cache oci cmd internal 2>/dev/null | wc -l)" \
		--arg l0 "$1" --arg l1 "$2" --argjson runs "$RUNS" --argjson fast "$FAST_RUNS" \
		'{date: $date, "end": $finish, command: $cmd, cores: ($cores | tonumber), cpu: $cpu, ram: $ram,
		  kernel: $kernel, go: $go, commit: $commit, dirty_product_files: ($dirty | tonumber),
		  load_start: $l0, load_end: $l1, runs: $runs, fast_runs: $fast}'
}

print_report() {
	local s=$1
	jq -r '.meta | "date:    \(.date) – \(.end)",
		"command: \(.command)",
		"machine: \(.cores) cores, \(.cpu), \(.ram), Linux \(.kernel), \(.go)",
		"commit:  \(.commit)\(if .dirty_product_files > 0 then " + \(.dirty_product_files) uncommitted product files" else "" end)",
		"load:    \(.load_start) at the start, \(.load_end) at the end (1/5/15 min)",
		"runs:    cold, base change, RUN true: \(.runs); no-op, edit: \(.fast_runs)"' "$s"
	echo
	table "$s"
}

# ------------------------------------------------------------ main

# guarded FUNC ARGS…: run FUNC in a subshell that stops at its first
# failing command, and set GUARD_RC to its exit code. (Called as
# `guarded … || …`, errexit would be off in FUNC: call it plainly.)
guarded() {
	set +e
	(
		set -e
		"$@"
	)
	GUARD_RC=$?
	set -e
}

main_run() {
	[[ $(id -u) == 0 ]] || die "run as root: builds mount overlays and create namespaces"
	command -v jq >/dev/null || die "jq is needed"
	[[ -x $GNU_TIME ]] || die "GNU time ($GNU_TIME) is needed for peak RSS"
	local projects=() p stamp start l0
	if [[ -n ${PROJECTS:-} ]]; then
		read -ra projects <<<"$PROJECTS"
	else
		for p in "$CORPUS"/0*/; do projects+=("$(basename "$p")"); done
	fi
	ensure_binary
	mkdir -p "$RES" "$WORK"
	TMPD=$(mktemp -d)
	trap 'rm -rf "$TMPD"' EXIT
	stamp=$(date -u +%Y%m%dT%H%M%SZ)
	start=$(date -u +%Y-%m-%dT%H:%MZ)
	l0=$(cut -d' ' -f1-3 /proc/loadavg)
	RUNLOG=$RES/corpus-$stamp.jsonl
	: >"$RUNLOG"
	BENCH_COMMAND="RUNS=$RUNS FAST_RUNS=$FAST_RUNS BENCH_DEBIAN=$BENCH_DEBIAN ${PROJECTS:+PROJECTS=\"$PROJECTS\" }${BENCH_COMMAND:-scripts/bench-corpus.sh}"
	log "binary $MB, data $DATA, runs $RUNS/$FAST_RUNS, load $l0"
	ensure_bases
	empty_trash # an interrupted run's
	local free
	free=$(df --output=avail -BG "$DATA" | tail -n1 | tr -dc 0-9)
	((free >= 20)) || log "warning: $free GiB free under $DATA; a full run keeps up to ~15 GiB of stores until it ends"
	if [[ $RUN_TRUE == 1 ]]; then
		log "RUN true: 100 steps vs 0 steps, --no-cache"
		guarded scenario_runtrue
		((GUARD_RC == 0)) || log "RUN true: failed, going on"
	fi
	for p in "${projects[@]}"; do
		[[ -d $CORPUS/$p ]] || die "no project $p in $CORPUS"
		if [[ $(conf "$p" BASE) == debian && $BENCH_DEBIAN != 1 ]]; then
			log "$p: skipped (debian base and network: BENCH_DEBIAN=1)"
			continue
		fi
		guarded bench_project "$p"
		((GUARD_RC == 0)) || { log "$p: failed, going on"; record_error "$p" run "failed (see the log above)"; }
	done
	to_trash "$STORE"
	log "deleting the stores and work dirs of the runs"
	empty_trash
	summarize "$RUNLOG" "$(meta_json "$l0" "$(cut -d' ' -f1-3 /proc/loadavg)" "$start" "$(date -u +%Y-%m-%dT%H:%MZ)")" >"$RES/corpus-$stamp.json"
	ln -sfn "corpus-$stamp.json" "$RES/corpus-latest.json"
	log "results: $RES/corpus-$stamp.json (runs: $RUNLOG)"
	print_report "$RES/corpus-$stamp.json"
}

case ${1:-run} in
run) main_run ;;
report) print_report "${2:-$RES/corpus-latest.json}" ;;
*)
	echo "usage: $0 [run | report [SUMMARY.json]]" >&2
	exit 2
	;;
esac
