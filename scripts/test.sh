#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests, lints, then the official-SDK
# conformance suite (tests/clients). Everything talks to 127.0.0.1 only.
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
