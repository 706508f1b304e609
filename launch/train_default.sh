#!/usr/bin/env bash
# The README's main job: prepare the default corpus (the Go standard library source from
# Debian's golang-1.19-src) once, then train the default tiny LongNet decoder on two MPI
# ranks (two data-parallel groups of one rank each; --set parallel.sp=2 splits each
# sequence across both instead). Extra arguments go to `longnet train`, e.g.
#   bash launch/train_default.sh --set optimizer.max_steps=50 --log-json train.jsonl
# Environment: BUILD_DIR (default build), DATA_DIR (default data/go), RANKS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
data=${DATA_DIR:-data/go}
ranks=${RANKS:-2}
longnet="$build/launch/longnet"
[[ -x $longnet ]] || { echo "train_default.sh: $longnet is missing; run bash launch/setup.sh first" >&2; exit 2; }

if [[ ! -f $data/train.h5 || ! -f $data/val.h5 ]]; then
  "$longnet" data prepare --out "$data"
fi

mpi_flags=(-np "$ranks" --bind-to none -x OMP_NUM_THREADS=1)
if [[ $(id -u) -eq 0 ]]; then
  # Open MPI refuses to run as root unless told; CI containers run as root.
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
if (( ranks > $(nproc) )); then
  mpi_flags+=(--oversubscribe)
fi
exec mpirun "${mpi_flags[@]}" "$longnet" train --set "data.dir=$data" "$@"
