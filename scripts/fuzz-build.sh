#!/bin/sh
# Builds the libFuzzer targets of fuzz/ as cargo-fuzz would (sanitizer coverage, value
# profiling of comparisons, debug assertions), without needing the cargo-fuzz subcommand:
# with the nightly toolchain when it is installed, else with the stable one and the same
# flags (every target compiles and links against libFuzzer; CI builds them this way).
# Usage: scripts/fuzz-build.sh [--stable] [CARGO BUILD ARGS...]; then run e.g.
#   fuzz/target/x86_64-unknown-linux-gnu/release/http_conn -max_total_time=600 fuzz/corpus/http_conn
# or scripts/fuzz-run.sh.
set -eu
cd "$(dirname "$0")/../fuzz"
toolchain=""
if command -v rustup >/dev/null 2>&1; then
  if [ "${1:-}" != --stable ] && rustup run nightly rustc --version >/dev/null 2>&1; then
    toolchain=+nightly
  else
    toolchain=+stable
  fi
fi
[ "${1:-}" = --stable ] && shift
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
echo "building the fuzz targets with $(cargo $toolchain --version)"
exec cargo $toolchain build --release --bins --locked "$@"
