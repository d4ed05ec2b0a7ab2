#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz, libFuzzer) of every decoder that takes remote or on-disk
# bytes: fuzz/fuzz_targets/. Each target first replays its past crashes (fuzz/regressions/
# TARGET/), then runs for SECONDS (default 10); a crash fails the run, and its input is left
# in fuzz/artifacts/TARGET/ to become a regression (move it to fuzz/regressions/). Needs a nightly
# toolchain and cargo-fuzz, installed here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo +nightly fuzz --version >/dev/null 2>&1 || cargo +nightly install cargo-fuzz --locked
cargo +nightly fuzz build -O
total=0
for target in $(cargo +nightly fuzz list); do
  log=$(mktemp)
  if [ -d "fuzz/regressions/$target" ]; then
    if ! cargo +nightly fuzz run -O "$target" fuzz/regressions/"$target"/* >"$log" 2>&1; then
      tail -40 "$log" >&2
      echo "fuzz: $target: a past crash is back (fuzz/regressions/$target/)" >&2
      exit 1
    fi
  fi
  if ! cargo +nightly fuzz run -O "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "fuzz: $target crashed; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  runs=$(grep -Eo '^Done [0-9]+ runs' "$log" | grep -Eo '[0-9]+' || echo 0)
  echo "fuzz: $target: $runs executions in ${seconds} s, no crash"
  total=$((total + runs))
  rm -f "$log"
done
echo "fuzz: $total executions in all"
