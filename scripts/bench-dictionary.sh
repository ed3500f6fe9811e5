#!/usr/bin/env bash
# Parameter dictionary benchmark: lint of a 5,000-parameter profile against the built-in
# dictionary and a 10,000-entry one, and the worst cases (all unknown, all near misses).
# Prints figures (see docs/performance.md). Target: under 50 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --locked --bench dictionary
