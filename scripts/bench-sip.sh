#!/bin/sh
# Apply-now benchmark (issue 21): N devices with proven loopback addresses (127.2.x.y) and a
# UDP listener each answering 200; prints the sends per second and the time until every
# device answered. Usage: scripts/bench-sip.sh [N] [RATE]   (defaults 1000 and 5000/s)
set -eu
cd "$(dirname "$0")/.."
ZEROTOUCH_SIP_BENCH_N=${1:-1000} ZEROTOUCH_SIP_BENCH_RATE=${2:-5000} \
  exec nice cargo test --locked --release --test it sip_bench -- --ignored --nocapture
