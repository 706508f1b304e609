#!/usr/bin/env bash
# Two longnet binaries (e.g. before and after a change) on the default training run, in
# one run: per-step time = (wall time of 33 steps - wall time of 3 steps) / 30, so setup,
# data loading and the final validation cancel; alternating A and B, REPEATS times, with
# 2 OpenMP threads and with 1. Prints one line per measurement and the medians.
#
#   bash bench/compare_binaries.sh BINARY_A BINARY_B DATA_DIR [REPEATS]
set -euo pipefail
a=${1:?usage: bench/compare_binaries.sh BINARY_A BINARY_B DATA_DIR [REPEATS]}
b=${2:?usage}
data=${3:?usage}
repeats=${4:-3}
for bin in "$a" "$b"; do [[ -x $bin ]] || { echo "compare_binaries.sh: $bin is not executable" >&2; exit 2; }; done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

seconds() {  # binary threads steps
  local start end
  rm -rf "$work/ckpt"
  start=$(date +%s.%N)
  OMP_NUM_THREADS=$2 "$1" train --set "data.dir=$data" --set "checkpoint.dir=$work/ckpt" \
    --set checkpoint.every=0 --set eval.every=0 --stop-at "$3" >"$work/log" 2>&1 ||
    { cat "$work/log" >&2; echo "compare_binaries.sh: $1 failed" >&2; exit 1; }
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}

echo "# $(date -u +%Y-%m-%d) $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
echo "# A: $a"
echo "# B: $b"
for threads in 2 1; do
  for ((i = 1; i <= repeats; ++i)); do
    for variant in A B; do
      bin=$a; [[ $variant == B ]] && bin=$b
      long=$(seconds "$bin" "$threads" 33)
      short=$(seconds "$bin" "$threads" 3)
      printf '%s threads=%s per_step_s=%.4f\n' "$variant" "$threads" "$(echo "($long - $short) / 30" | bc -l)"
    done
  done
done | tee "$work/runs.txt"
echo "# medians"
for threads in 2 1; do
  for variant in A B; do
    grep -E "^$variant threads=$threads " "$work/runs.txt" | sed -E 's/.*per_step_s=//' | sort -n |
      awk -v v="$variant" -v t="$threads" '{x[NR]=$1} END {printf "%s threads=%s median per_step_s=%.4f (%d runs)\n", v, t, x[int((NR+1)/2)], NR}'
  done
done
