#!/usr/bin/env bash
# The BLAS threading A/B behind cmake/LongnetBlas.cmake: the same longnet binary, the same
# training run (the built-in tiny config, 30 steps from the same seed), once with the
# OpenMP build of OpenBLAS it links and once with the pthread build forced in through
# LD_LIBRARY_PATH, in both thread layouts the README uses, alternating, REPEATS times.
# Prints one line per run and the median per variant; the losses must be equal (the two
# builds compute the same GEMMs).
#
#   bash bench/blas_threading.sh DATA_DIR [REPEATS]     (DATA_DIR: `longnet data prepare --out`)
#
# Environment: LONGNET (the binary) [build/launch/longnet]; PTHREAD_BLAS_DIR (the folder of
# the pthread build's libopenblas.so.0) [Debian's /usr/lib/<arch>/openblas-pthread].
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data=${1:?usage: bench/blas_threading.sh DATA_DIR [REPEATS]}
repeats=${2:-3}
longnet=${LONGNET:-$root/build/launch/longnet}
arch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
pthread_dir=${PTHREAD_BLAS_DIR:-/usr/lib/$arch/openblas-pthread}
[[ -x $longnet ]] || { echo "blas_threading.sh: $longnet is missing" >&2; exit 2; }
[[ -f $pthread_dir/libopenblas.so.0 ]] ||
  { echo "blas_threading.sh: no $pthread_dir/libopenblas.so.0 (apt-get install libopenblas0-pthread)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# layout: "1x2" (one process, 2 OpenMP threads) or "2x1" (mpirun -np 2, one thread each).
run() {
  local variant=$1 layout=$2 env=()
  [[ $variant == pthread ]] && env=(LD_LIBRARY_PATH="$pthread_dir")
  local args=(train --set "data.dir=$data" --set "checkpoint.dir=$work/ckpt" --set checkpoint.every=0
              --set optimizer.max_steps=30 --set optimizer.warmup_steps=10 --set log.every=30)
  rm -rf "$work/ckpt"
  local start end out
  start=$(date +%s.%N)
  if [[ $layout == 1x2 ]]; then
    out=$(env "${env[@]}" OMP_NUM_THREADS=2 "$longnet" "${args[@]}" 2>&1)
  else
    out=$(env "${env[@]}" LONGNET_BIN="$longnet" bash "$root/launch/mpirun.sh" -n 2 --threads 1 \
            --bind none "${args[@]}" 2>&1)
  fi
  end=$(date +%s.%N)
  local line
  line=$(grep -E '^step +30/30' <<<"$out" | tail -1)
  [[ -n $line ]] || { echo "$out" >&2; echo "blas_threading.sh: the run failed" >&2; exit 1; }
  printf '%-8s %s  wall %6.2f s  | %s\n' "$variant" "$layout" "$(bc <<<"$end - $start")" "$line"
}

echo "# $(date -u +%Y-%m-%d) $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; ${longnet#"$root"/}"
for layout in 1x2 2x1; do
  for ((i = 1; i <= repeats; ++i)); do
    run openmp "$layout"
    run pthread "$layout"
  done
done | tee "$work/runs.txt"
echo "# median wall seconds per variant and layout"
for layout in 1x2 2x1; do
  for variant in openmp pthread; do
    grep -E "^$variant +$layout" "$work/runs.txt" | sed -E 's/.*wall +([0-9.]+) s.*/\1/' | sort -n |
      awk -v v="$variant" -v l="$layout" '{a[NR]=$1} END {printf "%-8s %s  %.2f s (%d runs)\n", v, l, a[int((NR+1)/2)], NR}'
  done
done
