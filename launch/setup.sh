#!/usr/bin/env bash
# Installs what longnet needs (Debian 12 packages, only those missing), then configures
# and builds it with CMake + Ninja + ccache. Safe to run again: a no-op install and an
# incremental build.
#
#   bash launch/setup.sh [BUILD_DIR]        (default BUILD_DIR: build)
#
# Environment: LONGNET_CMAKE_ARGS adds CMake arguments (e.g. -DLONGNET_CUDA=OFF), also to the
# Python package's build; LONGNET_SKIP_PYTHON=1 skips the Python package (.venv).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${1:-build}

packages=(
  cmake ninja-build ccache g++ pkg-config clang-format
  libfmt-dev libcli11-dev libtomlplusplus-dev   # formatting, command line, configs
  libhdf5-dev hdf5-tools                        # tensors and checkpoints on disk
  libopenmpi-dev openmpi-bin                    # the MPI communicator, mpirun
  libopenblas-openmp-dev                        # GEMMs on longnet's OpenMP threads (cmake/LongnetBlas.cmake)
  libgtest-dev libgmock-dev libbenchmark-dev    # tests
  golang-1.19-src                               # Go sources: the default training corpus
  slurmctld slurmd slurm-client munge libpmix-dev  # launch/slurm and its tests (srun --mpi=pmix loads libpmix.so)
  python3-h5py python3-matplotlib               # tests/launch/slurm compares HDF5 files; bench plots
  python3-venv python3-numpy python3-torch python3-pytest python3-mpi4py  # python/ and its tests
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The CUDA toolkit's usual home; CMake finds nvcc on PATH otherwise.
cuda_args=()
if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  cuda_args+=(-DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc)
fi

cd "$root"
# shellcheck disable=SC2086  # LONGNET_CMAKE_ARGS is a list of words
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache \
  "${cuda_args[@]}" ${LONGNET_CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir"

# The Python package (python/, pyproject.toml): a virtual environment in .venv that sees
# Debian's numpy, h5py, torch, pytest and mpi4py (--system-site-packages; Debian's python3,
# not another one on PATH), with nanobind and scikit-build-core from PyPI, and longnet
# installed into it. --no-build-isolation reuses those two instead of downloading them
# again for every build; the extension's build directory (build/python-*) and ccache make
# a second run incremental.
if [[ ${LONGNET_SKIP_PYTHON:-0} == 1 ]]; then
  echo "setup: LONGNET_SKIP_PYTHON=1, so the Python package is not installed"
  exit 0
fi
venv="$root/.venv"
if [[ ! -x "$venv/bin/python" ]]; then
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
# Only when missing: a machine without network access can reuse a prepared .venv.
if ! "$venv/bin/python" -c "import nanobind, scikit_build_core" 2>/dev/null; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "nanobind>=2.0" "scikit-build-core>=0.10"
fi
# shellcheck disable=SC2086
CMAKE_ARGS="${cuda_args[*]} ${LONGNET_CMAKE_ARGS:-}" \
  CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-build-isolation "$root"
