#!/usr/bin/env bash
# Where Switchyard's CPU goes on the non-stream path, against the bare Pingora passthrough:
#  1. callgrind: instructions per request (repeatable, whatever else the machine does), for
#     Switchyard and the passthrough, each 1 thread, concurrency 1, a bounded window;
#  2. perf (cpu-clock sampling; this machine has no hardware counters): where the time goes,
#     kernel included, at concurrency 32.
# Output in target/load-bench/profile-<stamp>/: callgrind.out.<pid>, *.annotate.txt,
# perf-*.data, perf-*.report.txt. Bounded: about 3 minutes.
#
#   benches/load/profile.sh              # both
#   benches/load/profile.sh callgrind    # or perf
set -euo pipefail
cd "$(dirname "$0")/../.."
what="${1:-all}"
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$(pwd)/$target_dir" ;; esac
out="$target_dir/load-bench/profile-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
ulimit -n 20000 2>/dev/null || true

if [ "$what" = all ] || [ "$what" = callgrind ]; then
  command -v valgrind >/dev/null || { echo "profile.sh: valgrind is not installed" >&2; exit 1; }
  # Instrumentation starts once the target answers, so start-up is not counted; the driver
  # sends SIGTERM at the end so that callgrind writes its file.
  cargo bench --bench load_driver -- --runs 1 --only pingora,switchyard --threads 1 \
    --levels 1 --warmup-ms 0 --seconds 20 --streams 0 \
    --wrap "valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=$out/callgrind.out.%p" \
    --on-ready "callgrind_control -i on {pid} >/dev/null" 2>&1 | tee "$out/callgrind-driver.txt"
  for f in "$out"/callgrind.out.*; do
    callgrind_annotate --inclusive=yes --threshold=100 "$f" 2>/dev/null > "$f.inclusive.txt" || true
    callgrind_annotate "$f" 2>/dev/null | head -60 > "$f.self.txt" || true
    echo "$f: $(grep -m1 -E '^(PROGRAM TOTALS|Ir)' -A0 "$f.self.txt" || true)"
  done
fi

if [ "$what" = all ] || [ "$what" = perf ]; then
  command -v perf >/dev/null || { echo "profile.sh: perf is not installed" >&2; exit 1; }
  cargo bench --bench load_driver -- --runs 1 --only pingora,switchyard --threads 1 \
    --levels 32 --warmup-ms 1000 --seconds 12 --streams 0 \
    --on-ready "perf record -q -e cpu-clock -F 1999 -p {pid} -o $out/perf-{pid}.data -- sleep 10 2>/dev/null; perf stat -e task-clock,context-switches,cpu-migrations,page-faults -p {pid} -o $out/perf-stat-{pid}.txt -- sleep 0.8" \
    2>&1 | tee "$out/perf-driver.txt"
  for f in "$out"/perf-*.data; do
    perf report -i "$f" --sort dso --stdio 2>/dev/null | grep -v "^$" | head -30 > "${f%.data}.dso.txt" || true
    perf report -i "$f" --sort dso,symbol --stdio 2>/dev/null | grep -v "^$" | head -80 > "${f%.data}.symbols.txt" || true
  done
fi
echo "profile output: $out" >&2
