#!/usr/bin/env bash
# The side-by-side load bench (issue 12): the mock provider directly, nginx as a plain reverse
# proxy, a bare Pingora passthrough and Switchyard, in one invocation, on 127.0.0.1 only.
# Prints markdown tables (medians over runs) and writes them to target/load-bench/.
#
#   benches/load/run.sh                 # 3 runs, about 6 minutes on 2 cores
#   benches/load/run.sh --runs 1 --seconds 2 --streams 200    # a quick look
#   benches/load/run.sh --peers         # also LiteLLM and Portkey, when installed
#
# Every other flag goes to the driver (benches/load/driver/main.rs; `--help` lists them).
# Never part of CI: only `cargo bench` builds and runs the driver.
set -euo pipefail
cd "$(dirname "$0")/../.."

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "run.sh: need root to run: $*" >&2; return 1; fi
}

# nginx from Debian; installed only when missing, and never started as a service.
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  echo "run.sh: installing nginx-light (Debian) for the reverse-proxy baseline"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
fi

# 1,000 streams hold 2,000 sockets in a proxy (client side and upstream side).
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

out_dir="${CARGO_TARGET_DIR:-target}/load-bench"
mkdir -p "$out_dir"
stamp="$(date +%Y%m%d-%H%M%S)"
{
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), kernel $(uname -r)"
  echo "nginx: $( (nginx -v || /usr/sbin/nginx -v) 2>&1 | head -1)"
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
} | tee "$out_dir/machine-$stamp.txt" >&2

# The bench profile is the release profile; cargo also builds target/release/switchyard,
# which the driver finds through CARGO_BIN_EXE_switchyard.
cargo bench --bench load_driver -- \
  --out "$out_dir/tables-$stamp.md" --raw "$out_dir/raw-$stamp.jsonl" "$@"
echo "tables: $out_dir/tables-$stamp.md; raw per-run data: $out_dir/raw-$stamp.jsonl" >&2
