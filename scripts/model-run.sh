#!/bin/sh
# The model-based test of the credential state machine at length, outside CI
# (tests/it/machine/): SEQUENCES random sequences of STEPS steps against the real server and
# the reference model, split over PROCS processes side by side (default 2; the runs mostly
# wait on the server, so more processes than cores pay), each running the two test
# functions with its own seed. The binaries are copied first (ZEROTOUCH_TEST_BIN), so the
# tree can be rebuilt while it runs. A failure is shrunk to a minimal sequence and printed;
# keep it in tests/it/machine/regressions.rs.
#
#   [PROCS=N] scripts/model-run.sh [SEQUENCES] [STEPS] [SEED]   (defaults: 2000 30 time-based)
#
# Debug build only: the test clock the model advances is compiled into debug builds alone.
set -eu
sequences=${1:-2000}
steps=${2:-30}
seed=${3:-$(date +%s)}
procs=${PROCS:-2}
per=$(( (sequences + 2 * procs - 1) / (2 * procs) ))
cd "$(dirname "$0")/.."
it=$(cargo test --locked --test it --no-run 2>&1 | sed -n 's/.*Executable tests\/it\/main.rs (\(.*\))/\1/p' | tail -1)
server=$(ls target/*/debug/zerotouch target/debug/zerotouch 2>/dev/null | head -1)
[ -n "$it" ] && [ -n "$server" ] || { echo "model-run: no test binary or server binary built" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$it" "$work/it"
cp "$server" "$work/zerotouch"
started=$(date +%s)
k=0
while [ "$k" -lt "$procs" ]; do
  s=$((seed + k * 7919))
  ( ZEROTOUCH_TEST_BIN="$work/zerotouch" MODEL_CASES=$per MODEL_STEPS=$steps MODEL_SEED=$s \
      MODEL_SHRINK=${MODEL_SHRINK:-500} "$work/it" machine::random_sequences_keep_every_invariant \
      --nocapture --test-threads 2 > "$work/run$k.log" 2>&1; echo $? > "$work/rc$k" ) &
  k=$((k + 1))
done
wait
ended=$(date +%s)
failed=0
k=0
while [ "$k" -lt "$procs" ]; do
  if [ "$(cat "$work/rc$k")" != 0 ]; then
    failed=1
    echo "== process $k (seed $((seed + k * 7919))) failed:"
    # The whole failure: the invariant broken and the shrunk sequence (a tail would cut
    # the message off a long sequence).
    grep -v '^world: ' "$work/run$k.log" | sed -n '/panicked at/,/^stack backtrace/p'
    cp "$work/run$k.log" "${TMPDIR:-/tmp}/model-run-failure-$k.log" &&
      echo "(the full log: ${TMPDIR:-/tmp}/model-run-failure-$k.log)"
  fi
  k=$((k + 1))
done
echo "model-run: $((per * 2 * procs)) sequences of $steps steps in $procs processes, seeds from $seed, in $((ended - started)) s"
exit "$failed"
