#!/bin/sh
# The model-based test of the credential state machine at length, outside CI
# (tests/it/machine/): SEQUENCES random sequences of STEPS steps against the real server and
# the reference model, split over the two test functions so both cores are used. A failure
# is shrunk to a minimal sequence and printed; keep it in tests/it/machine/regressions.rs.
#
#   scripts/model-run.sh [SEQUENCES] [STEPS] [SEED]      (defaults: 2000 30 time-based)
#
# Debug build only: the test clock the model advances is compiled into debug builds alone.
set -eu
sequences=${1:-2000}
steps=${2:-30}
seed=${3:-$(date +%s)}
half=$(( (sequences + 1) / 2 ))
cd "$(dirname "$0")/.."
cargo test --locked --test it --no-run
started=$(date +%s)
MODEL_CASES=$half MODEL_STEPS=$steps MODEL_SEED=$seed MODEL_SHRINK=${MODEL_SHRINK:-500} \
    cargo test --locked --test it -- machine::random_sequences_keep_every_invariant \
    --nocapture --test-threads 2
ended=$(date +%s)
echo "model-run: $((half * 2)) sequences of $steps steps, seed $seed, in $((ended - started)) s"
