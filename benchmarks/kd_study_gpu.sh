#!/usr/bin/env bash
# The full-size kd_study on one GPU: every data set's teacher at once, then one process per
# (data set, seed) working through that data set's runs in priority order. A small model leaves a
# big GPU mostly idle, so many processes share it; each holds one CPU thread.
#
#   KD_OUT=outputs/kd-study-full DEADLINE=420 bash benchmarks/kd_study_gpu.sh [--smoke]
#
# Runs already recorded under $KD_OUT/runs are skipped, so a second call continues the first.
# No run starts after DEADLINE seconds; render the results afterwards with
#   python benchmarks/kd_study.py --full --output_dir $KD_OUT --render_only
set -u
cd "$(dirname "$0")/.."
KD_OUT=${KD_OUT:-outputs/kd-study-full}
DEADLINE=${DEADLINE:-420}
TEACHER=${TEACHER:-sentence-transformers/all-MiniLM-L6-v2}
SEEDS=${SEEDS:-"1 2 3"}
PYTHON=${PYTHON:-python}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
mkdir -p "$KD_OUT/logs"
started=$(date +%s)

# In priority order: what a run cut short by the deadline must already hold comes first.
declare -A RUNS=(
  [conll2003]="plain-alternate-L3 kd-alternate-L3 kd-alternate-L2 plain-alternate-L2 kd_augment-alternate-L3 kd_hidden-alternate-L3"
  [btc]="plain-alternate-L3 kd-alternate-L3 kd-alternate-L2 plain-alternate-L2 kd_augment-alternate-L3 kd_hidden-alternate-L3"
  [sst2]="plain-alternate-L3 kd-alternate-L3 kd_transfer1-alternate-L3 kd_augment-alternate-L3 kd_transfer3-alternate-L3"
  [rte]="plain-alternate-L3 kd-alternate-L3 kd_augment-alternate-L3 kd_hidden-alternate-L3 plain-bottom-L3 kd-bottom-L3"
  [conll2003-semi]="plain-alternate-L3 kd-alternate-L3 kd_transfer1-alternate-L3 kd_transfer3-alternate-L3 kd_transferall-alternate-L3"
  [btc-semi]="plain-alternate-L3 kd-alternate-L3 kd_transfer1-alternate-L3 kd_transfer3-alternate-L3 kd_transferall-alternate-L3"
)

study() {
  "$PYTHON" benchmarks/kd_study.py --full --output_dir "$KD_OUT" --teacher "$TEACHER" --no_results "$@"
}

chain() {
  local data_set=$1
  study --data_sets "$data_set" --prepare_only "${@:2}" >"$KD_OUT/logs/$data_set-prepare.log" 2>&1 || {
    echo "$data_set: teacher preparation failed (see $KD_OUT/logs/$data_set-prepare.log)"
    return
  }
  echo "$data_set: teacher ready after $(($(date +%s) - started)) s"
  for seed in $SEEDS; do
    local left=$((DEADLINE - ($(date +%s) - started)))
    study --data_sets "$data_set" --seeds "$seed" --runs ${RUNS[$data_set]} --deadline_seconds "$left" "${@:2}" \
      >"$KD_OUT/logs/$data_set-seed$seed.log" 2>&1 &
  done
  wait
  echo "$data_set: done after $(($(date +%s) - started)) s"
}

for data_set in "${!RUNS[@]}"; do
  chain "$data_set" "$@" &
done
wait
echo "all done after $(($(date +%s) - started)) s"
