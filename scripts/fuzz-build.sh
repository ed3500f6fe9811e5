#!/bin/sh
# Builds the libFuzzer targets of fuzz/ with the nightly toolchain, as cargo-fuzz would
# (sanitizer coverage, value profiling of comparisons, debug assertions), without needing
# the cargo-fuzz subcommand. Usage: scripts/fuzz-build.sh; then run e.g.
#   fuzz/target/x86_64-unknown-linux-gnu/release/http_conn -max_total_time=600 fuzz/corpus/http_conn
set -eu
cd "$(dirname "$0")/../fuzz"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
exec cargo +nightly build --release --bins "$@"
