#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/) for a bounded time on its seeded corpus.
#
#   scripts/fuzz.sh [seconds-per-target] [target...]     default: 30 s, every target
#
# The seeds committed under fuzz/corpus/<target>/seed-* are read, never written: what a run
# discovers goes to <fuzz build dir>/corpus/<target>/, kept between runs. A crash or a failed
# property leaves its input in fuzz/artifacts/<target>/ and makes this script exit non-zero;
# reproduce it with `RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <artifact>` from fuzz/.
#
# cargo-fuzz needs nightly compiler flags (-Zsanitizer): RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept them. The first build instruments every dependency and takes minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
shift || true

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --version 0.13.2 --locked
fi
export RUSTC_BOOTSTRAP=1
# Its own build directory (sanitizer flags would otherwise invalidate the main build's): next
# to the main one when that is outside the clone (CI caches it there), else fuzz/target.
if [ -n "${FUZZ_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR="$FUZZ_TARGET_DIR"
elif [ -n "${CARGO_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR%/}-fuzz"
else
  export CARGO_TARGET_DIR="$PWD/fuzz/target"
fi

features=()
if grep -q '^pub mod bedrock;' src/dialects/mod.rs; then
  features=(--features bedrock)
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(sse_tap anthropic_stream gemini_stream chat_request completion config)
  [ ${#features[@]} -gt 0 ] && targets+=(bedrock_stream)
fi

cd fuzz
cargo fuzz build -O "${features[@]}"
failed=()
for t in "${targets[@]}"; do
  work="$CARGO_TARGET_DIR/corpus/$t"
  mkdir -p "$work" "artifacts/$t"
  echo "== fuzz $t for ${seconds}s"
  if ! cargo fuzz run -O "${features[@]}" "$t" "$work" "corpus/$t" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 2>"$work.log"; then
    failed+=("$t")
    tail -n 40 "$work.log"
  fi
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)' "$work.log" || true
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failures in ${failed[*]} (inputs in fuzz/artifacts/)"
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no failure"
