#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests, lints, then the official-SDK
# conformance suite (tests/clients), and in CI a short fuzz run of every cargo-fuzz target.
# Everything talks to 127.0.0.1 only.
#
# FUZZ_SECONDS=<n> fuzzes each target for n seconds after the tests (0: not at all); unset,
# it is 30 when CI=true (.ci/run sets it) and 0 otherwise. A crash fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

cargo build --bins
cargo test --all-targets
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings

if [ -x tests/clients/run.sh ]; then
  SWITCHYARD_BIN="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug/switchyard" tests/clients/run.sh
fi

fuzz_seconds="${FUZZ_SECONDS:-}"
if [ -z "$fuzz_seconds" ]; then
  if [ "${CI:-}" = true ]; then fuzz_seconds=30; else fuzz_seconds=0; fi
fi
if [ "$fuzz_seconds" != 0 ]; then
  scripts/fuzz.sh "$fuzz_seconds"
fi
