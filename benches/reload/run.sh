#!/usr/bin/env bash
# Hot reload under load, with its numbers: 20 config rewrites (every fourth one invalid) while
# four clients keep sending chat requests (half streamed) to the real binary. Prints the
# request count, failures (must be 0) and latency percentiles. Loopback only, ~10 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo test --test operations reloading_twenty_times -- --nocapture 2>&1 | grep -E "reload under load|test result"
