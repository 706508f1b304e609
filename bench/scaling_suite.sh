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
#   PYTHON        interpreter with matplotlib [unset: python3 if it has it, else
#                 /usr/bin/python3; one given that lacks matplotlib is refused]
#   PLOT          0 skips the figures [1]
# OUT_DIR and LONGNET are relative to the caller's directory, BUILD_DIR to the repository.
# Writes OUT_DIR/{info,comm,scaling,model,model_validation}.{txt,csv,json} and the PNG
# figures of bench/plot_scaling.py; bench/README.md defines every column. The
# validation is analysis of the CSVs, not a measurement. Its exit status 1 (the model's
# bytes, calls or FLOPs differ from the measured ones: the model or the runtime is wrong)
# fails the suite; its exit status 2 (bad input, e.g. a link fit on a loaded machine whose
# comm times do not grow with the size) is a WARNING with the command to rerun it, and
# the suite goes on.
set -euo pipefail
die() { echo "scaling_suite.sh: $*" >&2; exit 2; }
[[ $# -ge 1 ]] || die "usage: bash bench/scaling_suite.sh OUT_DIR [scaling args...]"
# The caller's paths are made absolute before the cd into the repository below, which
# would otherwise resolve them against the repository instead of the caller's directory.
out=$1
[[ $out == /* ]] || out=$PWD/$out
shift
if [[ -n ${LONGNET:-} ]]; then
  longnet=$LONGNET
  [[ $longnet == /* ]] || longnet=$PWD/$longnet
fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."
longnet=${longnet:-${BUILD_DIR:-build}/launch/longnet}
[[ $longnet == /* ]] || longnet=$PWD/$longnet  # so the rerun line below works from anywhere
[[ -x $longnet ]] || die "$longnet is missing; run bash launch/setup.sh first"

# The plot's interpreter is settled before the benchmarks, so a bad PYTHON fails in
# seconds rather than after them. Only the default falls back: a PYTHON the caller chose
# is never swapped for another interpreter behind their back.
if [[ ${PLOT:-1} != 0 ]]; then
  if [[ -n ${PYTHON:-} ]]; then
    python=$PYTHON
    "$python" -c "import matplotlib" 2>/dev/null ||
      die "PYTHON=$python cannot import matplotlib (the figures need it); install it there, unset PYTHON to use python3 or /usr/bin/python3, or set PLOT=0"
  else
    python=python3
    "$python" -c "import matplotlib" 2>/dev/null || python=/usr/bin/python3
  fi
fi
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
# longnet's exit statuses (launch/main.cpp): 2 is bad input, here a link fit that the
# comm times cannot support (a loaded machine), which says nothing against the model;
# 1 is a failed check, the model's bytes/calls/FLOPs against the measured ones, a real
# defect that must fail the suite, as must anything else unexpected.
validation=0
step model_validation "${validate[@]}" || validation=$?
case $validation in
  0) ;;
  2)
    echo "WARNING: the cost model validation could not be made (exit status 2: bad input," \
      "e.g. comm times that do not grow with the bytes on a loaded machine; its message is" \
      "above and in $out/model_validation.txt); no model_validation.csv. The measurements" \
      "are complete. Rerun it with: ${validate[*]}"
    ;;
  *)
    echo "scaling_suite.sh: ERROR: the cost model validation failed with exit status" \
      "$validation (1: the model's bytes, calls or FLOPs differ from the measured ones; see" \
      "the MISMATCH lines above and in $out/model_validation.txt)" >&2
    exit "$validation"
    ;;
esac

if [[ ${PLOT:-1} != 0 ]]; then
  step plots "$python" bench/plot_scaling.py "$out"
fi
echo "== done: $(cd "$out" && ls | tr '\n' ' ')"
