#!/usr/bin/env bash
# The scaling suite in one call, on mpirun here or under Slurm (launch/slurm/scaling.sbatch
# calls this with LAUNCH set to its srun): the build and rank layout, the collectives,
# weak and strong scaling (dilated and dense), the cost model's prediction from 8K to
# 2^30 tokens and its validation against this run's measurements, then the figures.
#
#   bash bench/scaling_suite.sh OUT_DIR [extra `longnet bench scaling` arguments]
#
# Environment (defaults in brackets):
#   RANKS         ranks of the job [4]
#   LAUNCH        the command line that starts the job's ranks, the program appended
#                 [mpirun -np RANKS --bind-to none -x OMP_NUM_THREADS=1, with
#                 --oversubscribe when RANKS > cores]
#   LONGNET       the binary [BUILD_DIR/launch/longnet, BUILD_DIR defaulting to build]
#   COMM_BACKEND  --backend of `bench comm` [mpi]
#   COMM_ARGS     more words for `bench comm` [--max-bytes 16M]
#   MODEL_ARGS    more words for the prediction sweep of `bench model` [none]
#   PYTHON        interpreter with matplotlib [python3 if it has it, else /usr/bin/python3]
#   PLOT          0 skips the figures [1]
# Writes OUT_DIR/{info,comm,scaling,model,model_validation}.{txt,csv,json} and the PNG
# figures of bench/plot_scaling.py; bench/README.md defines every column. The
# validation is analysis of the CSVs, not a measurement: when it fails (a link fit on a
# loaded machine whose times do not grow with the size) the suite says so with the
# command to rerun it, and goes on.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ $# -ge 1 ]] || { echo "usage: bash bench/scaling_suite.sh OUT_DIR [scaling args...]" >&2; exit 2; }
out=$1
shift
longnet=${LONGNET:-${BUILD_DIR:-build}/launch/longnet}
[[ -x $longnet ]] || { echo "scaling_suite.sh: $longnet is missing; run bash launch/setup.sh first" >&2; exit 2; }
mkdir -p "$out"

if [[ -z ${LAUNCH:-} ]]; then
  ranks=${RANKS:-4}
  LAUNCH="mpirun -np $ranks --bind-to none -x OMP_NUM_THREADS=1"
  # Open MPI refuses more ranks than cores unless told, and root unless told.
  if ((ranks > $(nproc))); then LAUNCH+=" --oversubscribe"; fi
  if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
fi
read -r -a launch <<<"$LAUNCH"

step() {  # step NAME COMMAND...: runs it, its output to the terminal and OUT_DIR/NAME.txt
  local name=$1
  shift
  echo "== $name: $*"
  "$@" 2>&1 | tee "$out/$name.txt"
}

step info "${launch[@]}" "$longnet" info
# shellcheck disable=SC2086  # COMM_ARGS is a list of words
step comm "${launch[@]}" "$longnet" bench comm --backend "${COMM_BACKEND:-mpi}" --op all \
  --uneven ${COMM_ARGS:---max-bytes 16M} --csv "$out/comm.csv" --json "$out/comm.json"
step scaling "${launch[@]}" "$longnet" bench scaling "$@" \
  --csv "$out/scaling.csv" --json "$out/scaling.json"
# The cost model is arithmetic: one process.
# shellcheck disable=SC2086  # MODEL_ARGS is a list of words
step model "$longnet" bench model ${MODEL_ARGS:-} --csv "$out/model.csv" --json "$out/model.json"
validate=("$longnet" bench model --validate "$out/scaling.csv" --comm-csv "$out/comm.csv"
  --csv "$out/model_validation.csv" --json "$out/model_validation.json")
if ! step model_validation "${validate[@]}"; then
  echo "WARNING: the cost model validation failed (above; no model_validation.csv); the" \
    "measurements are complete. Rerun it with: ${validate[*]}"
fi

if [[ ${PLOT:-1} != 0 ]]; then
  python=${PYTHON:-python3}
  "$python" -c "import matplotlib" 2>/dev/null || python=/usr/bin/python3
  step plots "$python" bench/plot_scaling.py "$out"
fi
echo "== done: $(cd "$out" && ls | tr '\n' ' ')"
