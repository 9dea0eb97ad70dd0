#!/usr/bin/env bash
# A bounded soak (not in CI): mixed traffic with faults against the release binary for N
# minutes (default 10), RSS and open fds sampled every 10 s into a CSV, then checks that both
# plateau and that the ledger holds exactly one record per request.
#
#   benches/soak/run.sh [minutes] [workers]      e.g. benches/soak/run.sh 5 8
#
# Writes benches/soak/soak-<date>.csv (seconds, rss_kb, fds, requests). Exits non-zero when a
# check fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
minutes="${1:-10}"
workers="${2:-8}"
cargo build --release --bin switchyard
bin="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/release/switchyard"
csv="benches/soak/soak-$(date -u +%Y%m%dT%H%M%SZ).csv"
exec python3 benches/soak/soak.py --bin "$bin" --minutes "$minutes" --workers "$workers" --csv "$csv"
