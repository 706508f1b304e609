# shellcheck shell=bash
# Assertions for the shell tests of tests/launch/slurm, sourced after slurm_cluster.sh. A failed
# check prints what was expected and where to look, then exits 1 (the EXIT trap of
# cluster_start stops the cluster and prints the tail of its daemon logs).

test_fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# expect_line FILE REGEX WHAT: FILE has a line matching the extended REGEX.
expect_line() {
  local file=$1 regex=$2 what=$3
  if ! grep -Eq -- "$regex" "$file"; then
    echo "---- $file ----" >&2
    cat "$file" >&2
    test_fail "$what: no line matching /$regex/ in $file"
  fi
  echo "ok: $what"
}

# A small corpus of synthetic Go-like source files (deterministic), prepared into $2.
make_corpus() {
  local longnet=$1 out=$2 src
  src=$(dirname "$out")/corpus-src
  mkdir -p "$src"
  python3 - "$src" <<'EOF'
import sys
for f in range(40):
    with open(f"{sys.argv[1]}/file{f:02}.go", "w") as out:
        for line in range(60):
            out.write(f"func f{f}_{line}(x int) int {{ return x*{line % 7} + {(f * line) % 13} }}\n")
EOF
  "$longnet" data prepare --input "$src" --ext .go --out "$out" --val-fraction 0.2 --quiet
}

# Prints an interpreter with what the tests need (h5py, numpy; matplotlib for the
# plots): python3 on PATH, else Debian's own, which launch/setup.sh equips (a virtual
# environment or pyenv first on PATH may lack them). Use: python=$(pick_python) || exit 1
pick_python() {
  local candidate
  for candidate in python3 /usr/bin/python3; do
    if "$candidate" -c 'import h5py, matplotlib, numpy' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  test_fail "no python3 with h5py, numpy and matplotlib: run bash launch/setup.sh (python3-h5py, python3-matplotlib)"
}
