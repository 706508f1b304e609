#!/usr/bin/env bash
# Checks that C++ and CUDA sources follow the committed .clang-format (clang-format in
# dry-run mode; nothing is rewritten). Exits non-zero, listing each file and line, when one
# does not.
#
#   bash launch/check_formatting.sh            every tracked source file
#   bash launch/check_formatting.sh BASE       the files changed since git revision BASE
#                                              (committed or not), e.g. origin/main
#
# To fix what it reports: clang-format -i FILE...
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v clang-format >/dev/null; then
  echo "check_formatting: clang-format is not installed (apt-get install clang-format)" >&2
  exit 2
fi

patterns=('*.cpp' '*.hpp' '*.cu' '*.cuh' '*.h')
if (($# > 0)); then
  if ! git rev-parse --verify --quiet "$1^{commit}" >/dev/null; then
    echo "check_formatting: '$1' is not a git revision; give a branch, tag or commit" >&2
    exit 2
  fi
  mapfile -t files < <(git diff --name-only --diff-filter=ACMR "$1" -- "${patterns[@]}")
else
  mapfile -t files < <(git ls-files -- "${patterns[@]}")
fi
# Tracked files deleted in the working tree are not there to check.
existing=()
for f in "${files[@]}"; do [[ -e $f ]] && existing+=("$f"); done
files=("${existing[@]+"${existing[@]}"}")
if ((${#files[@]} == 0)); then
  echo "check_formatting: no C++ or CUDA files to check"
  exit 0
fi

if ! clang-format --dry-run --Werror "${files[@]}"; then
  echo "check_formatting: the files above differ from .clang-format; run clang-format -i on them" >&2
  exit 1
fi
echo "check_formatting: ${#files[@]} files follow .clang-format"
