#!/bin/sh
# Runs each libFuzzer target of fuzz/ for SECONDS (default 600) one after the other, at the
# lowest CPU priority, seeded from fuzz/seeds/<target>; the corpus grows in
# fuzz/corpus/<target> and crashes land in fuzz/artifacts/<target>/ (each becomes a
# regression test). Build first with scripts/fuzz-build.sh. Usage:
#   scripts/fuzz-run.sh [SECONDS] [TARGET...]
set -u
cd "$(dirname "$0")/../fuzz"
secs=${1:-600}
[ $# -gt 0 ] && shift
targets=${*:-http_conn device_path user_agent csv_import template xml_lint dns_answer dhcp_answer dhcp_config sip_response}
bin=target/x86_64-unknown-linux-gnu/release
for t in $targets; do
    mkdir -p "corpus/$t" "artifacts/$t"
    seeds=""
    [ -d "seeds/$t" ] && seeds="seeds/$t"
    start=$(date +%s)
    nice -n 19 "$bin/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="artifacts/$t/" -print_final_stats=1 "corpus/$t" $seeds \
        > "artifacts/$t.log" 2>&1
    rc=$?
    echo "$t: exit $rc after $(( $(date +%s) - start ))s, $(grep -a 'stat::number_of_executed_units' "artifacts/$t.log" | awk '{print $2}') runs, corpus $(ls "corpus/$t" | wc -l) files, crashes: $(ls "artifacts/$t" | wc -l)"
done
