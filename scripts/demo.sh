#!/usr/bin/env bash
# Runs the gateway on the built-in demo config (conf/demo.yaml): a mock provider in the same
# process, a demo key `sk-demo`, and the API on http://127.0.0.1:8080/v1. No API keys needed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --release --bin switchyard -- serve --demo "$@"
