#!/usr/bin/env bash
# Console benchmarks: bulk association import of 100,000 valid lines, and Find Operations
# over 1,000,000 devices with prefix and %contains% patterns. Prints figures (see
# docs/performance.md). Sizes: ZT_BENCH_IMPORT_ROWS, ZT_BENCH_DEVICES.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --locked --bench console
