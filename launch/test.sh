#!/usr/bin/env bash
# The whole test suite, as CI runs it, from a fresh clone on a fresh machine:
#   1. launch/setup.sh: install what is missing, build (CUDA kernels compiled where nvcc
#      is), install the Python package into .venv;
#   2. every ctest of that build (C++ unit and mpi tests, Python, install, Slurm; the gpu
#      tests report themselves skipped without a GPU);
#   3. the unit and mpi tests again, built with AddressSanitizer and
#      UndefinedBehaviorSanitizer (CUDA, benchmarks and Python off) in build-sanitize/;
#   4. the formatting check (launch/check_formatting.sh).
#
#   bash launch/test.sh
#
# Environment: LONGNET_SKIP_SANITIZERS=1 skips step 3 (a quicker local run).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

step() { echo "test: $* ($(date -u +%H:%M:%S))"; }

step "setup and build"
bash launch/setup.sh
step "ctest (build/)"
ctest --test-dir build --output-on-failure -j 2

if [[ ${LONGNET_SKIP_SANITIZERS:-0} != 1 ]]; then
  step "build with AddressSanitizer and UndefinedBehaviorSanitizer (build-sanitize/)"
  cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DLONGNET_SANITIZE=ON \
    -DLONGNET_CUDA=OFF -DLONGNET_BENCH=OFF -DLONGNET_PYTHON=OFF >/dev/null
  cmake --build build-sanitize
  step "ctest -L 'unit|mpi' (build-sanitize/)"
  # Any report fails the test: ASan aborts on its first error, UBSan does too (the build
  # sets -fno-sanitize-recover); LeakSanitizer ignores only Open MPI's own allocations
  # (and HDF5's per-thread state; tests/sanitizers/lsan_suppressions.txt says why). Full
  # stacks (fast_unwind_on_malloc=0), so that a suppression matches the library that
  # allocated, whatever called it.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:fast_unwind_on_malloc=0 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    LSAN_OPTIONS=suppressions=$root/tests/sanitizers/lsan_suppressions.txt:use_tls=0:print_suppressions=0 \
    ctest --test-dir build-sanitize --output-on-failure -j 2 -L 'unit|mpi'
fi

step "formatting"
bash launch/check_formatting.sh
step "all passed"
