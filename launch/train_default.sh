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
export BUILD_DIR=$build  # for launch/mpirun.sh

if [[ ! -f $data/train.h5 || ! -f $data/val.h5 ]]; then
  "$longnet" data prepare --out "$data"
fi

# One OpenMP thread per rank, ranks unbound; launch/mpirun.sh adds what Open MPI needs
# here (root, more ranks than cores).
exec bash launch/mpirun.sh -n "$ranks" --threads 1 --bind none train --set "data.dir=$data" "$@"
