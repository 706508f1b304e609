#!/usr/bin/env bash
# The checks and benchmarks that need a GPU, in one run:
#
#   bash bench/gpu_suite.sh BUILD_DIR OUT_DIR [STAGE ...]
#
# Stages (all by default, in this order):
#   info      the device, driver and toolkit
#   tests     ctest -L gpu (the CUDA kernels against the float64 reference)
#   sanitize  compute-sanitizer memcheck, racecheck, synccheck and initcheck on small cases
#   attend    `longnet attend --device cuda` on the shipped fixtures, against the expected file
#   bench     longnet bench attention --device cuda on the issue's problem (bf16 with each dq
#             mode; fp16 and fp32 at the first size)
#   torch     bench/torch_baselines.py (PyTorch SDPA ceiling and the official approach)
#
# Each stage writes OUT_DIR/<stage>.log, runs under a time limit, and a failing stage does
# not stop the next; the exit status is the number of stages that failed. The sizes can be
# narrowed with LONGNET_GPU_TOKENS (comma list, default the issue's 32K..1M).
set -uo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: bash bench/gpu_suite.sh BUILD_DIR OUT_DIR [info|tests|sanitize|attend|bench|torch ...]" >&2
  exit 2
fi
build=$(cd "$1" && pwd) || exit 2
out=$2
shift 2
mkdir -p "$out"
out=$(cd "$out" && pwd)
source_dir=$(cd "$(dirname "$0")/.." && pwd)
stages=("$@")
[[ ${#stages[@]} -eq 0 ]] && stages=(info tests sanitize attend bench torch)
tokens=${LONGNET_GPU_TOKENS:-32768,131072,524288,1048576}
cuda_test=$build/tests/kernels/test_dilated_attention_cuda
# The CUDA kernel table: `longnet bench attention --device cuda` with the given options.
cuda_bench() { "$build/launch/longnet" bench attention --device cuda "$@"; }
failed=0

# run_stage NAME SECONDS COMMAND: the command (a function below or a command line) runs in
# a child bash under the time limit; its output goes to the log and the terminal.
run_stage() {
  local name=$1 limit=$2 command=$3
  echo "=== $name (limit ${limit}s): $command" | tee -a "$out/$name.log"
  local start=$SECONDS
  timeout --signal=KILL "$limit" bash -c "$command" 2>&1 | tee -a "$out/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "=== $name: exit $rc after $((SECONDS - start))s" | tee -a "$out/$name.log"
  [[ $rc -eq 0 ]] || failed=$((failed + 1))
}

stage_info() {
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  nvcc --version | tail -2
  python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name())'
}

# Small cases: the sanitizers slow kernels by 10-100x. The filters cover every dtype, head
# dims 32/64/128, causal and not, both offset schemes, several patterns and a short last
# segment.
sanitize_filter='*N7_H4_D64_w2x4x8*:*B2_N7_H3_D128_w16_r3*:*N1000_H3_D32_w64x64*:*N256_H2_D32_w128_r1*:*B2_N1000_H4_D32_w32x96*'
stage_sanitize() {
  local rc=0 tool
  for tool in memcheck racecheck synccheck initcheck; do
    echo "--- compute-sanitizer --tool $tool"
    compute-sanitizer --tool "$tool" --error-exitcode 99 \
      "$cuda_test" --gtest_filter="$sanitize_filter" --gtest_brief=1 || rc=1
  done
  return $rc
}

# The shipped example (expected outputs from a float64 evaluation of the spec) through the
# command line, compared by relative L2 with a bound per dtype.
stage_attend() {
  local rc=0 dtype bound
  local example=$source_dir/tests/fixtures/example_causal_grouped_w32-96_r2-3_N200_B1_H4_D32.h5
  for dtype in float32:1e-5 bfloat16:1e-2 float16:2e-3; do
    bound=${dtype#*:}
    dtype=${dtype%%:*}
    "$build/launch/longnet" attend --device cuda --dtype "$dtype" --in "$example" \
      --out "$out/attend_$dtype.h5" || { rc=1; continue; }
    python3 - "$example" "$out/attend_$dtype.h5" "$bound" "$dtype" <<'PY' || rc=1
import sys, h5py, numpy as np
expected, got = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
for name in ("o", "lse"):
    ref, out = expected["expected/" + name][...], got[name][...]
    # Rows no pattern covers have lse = -inf: those must match exactly, the rest by L2.
    uncovered = np.isneginf(ref)
    if not np.array_equal(uncovered, np.isneginf(out)):
        sys.exit(f"attend {sys.argv[4]}: {name} has -inf at other rows than the reference")
    ref, out = ref[~uncovered], out[~uncovered]
    err = np.linalg.norm(out - ref) / np.linalg.norm(ref)
    print(f"attend {sys.argv[4]}: {name} rel L2 {err:.3e} (bound {sys.argv[3]}), "
          f"{uncovered.sum()} uncovered rows")
    if not err <= float(sys.argv[3]):
        sys.exit(1)
PY
  done
  return $rc
}

stage_bench() {
  local rc=0
  cuda_bench --tokens "$tokens" --dtype bfloat16 --csv "$out/cuda_bf16.csv" || rc=1
  cuda_bench --tokens "${tokens%%,*}" --dtype float16 --csv "$out/cuda_fp16.csv" || rc=1
  cuda_bench --tokens "$tokens" --dtype bfloat16 --atomic-dq \
    --csv "$out/cuda_bf16_atomic_dq.csv" || rc=1
  cuda_bench --tokens "${tokens%%,*}" --dtype float32 --csv "$out/cuda_fp32.csv" || rc=1
  return $rc
}

stage_torch() {
  PYTHONUNBUFFERED=1 python3 "$source_dir/bench/torch_baselines.py" --tokens "$tokens" \
    --csv "$out/torch_baselines.csv"
}

export build out source_dir tokens cuda_test sanitize_filter
export -f cuda_bench stage_info stage_sanitize stage_attend stage_bench stage_torch

for stage in "${stages[@]}"; do
  case $stage in
    info) run_stage info 60 stage_info ;;
    tests)
      # The NCCL tests start mpirun; without Open MPI on the machine they are left out, loudly.
      nccl_filter=
      if ! command -v mpirun >/dev/null; then
        echo "tests: no mpirun here: the NCCL communicator tests are not run" | tee -a "$out/tests.log"
        nccl_filter="-E test_nccl_communicator"
      fi
      run_stage tests 300 "ctest --test-dir \"\$build\" -L gpu $nccl_filter --output-on-failure -j 8" ;;
    sanitize) run_stage sanitize 420 stage_sanitize ;;
    attend) run_stage attend 60 stage_attend ;;
    bench) run_stage bench 420 stage_bench ;;
    torch) run_stage torch 420 stage_torch ;;
    *) echo "unknown stage '$stage' (info, tests, sanitize, attend, bench, torch)" >&2; exit 2 ;;
  esac
done
echo "=== gpu_suite: $failed stage(s) failed"
exit "$failed"
