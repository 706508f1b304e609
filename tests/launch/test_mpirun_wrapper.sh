#!/usr/bin/env bash
# launch/mpirun.sh as a user runs it: on this node, through a host file naming this node,
# and its refusals.
#
#   bash tests/launch/test_mpirun_wrapper.sh LONGNET_BINARY SOURCE_DIR
#
# Checked with `longnet info`, whose world line and rank lines say how many ranks started
# and with how many OpenMP threads each; the refusals must exit 2 with the script's own
# message (not a bash or mpirun error).
set -euo pipefail
longnet=$1
source_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
wrapper() { LONGNET_BIN=$longnet bash "$source_dir/launch/mpirun.sh" "$@"; }
expect_in() {  # expect_in FILE TEXT WHAT
  grep -Fq -- "$2" "$1" || { cat "$1" >&2; fail "$3: no '$2' in the output"; }
  echo "ok: $3"
}

wrapper -n 2 --threads 1 info >"$work/one_node.txt" 2>&1 || { cat "$work/one_node.txt"; fail "-n 2 info failed"; }
expect_in "$work/one_node.txt" "world: 2 rank(s) on 1 node(s)" "one node, two ranks"
expect_in "$work/one_node.txt" "1 OpenMP threads" "--threads 1 reached the ranks"
expect_in "$work/one_node.txt" "--bind-to none" "the mpirun line it ran is printed"

# A host file naming this node, as one would name the nodes of an allocation.
echo "localhost slots=2" >"$work/hosts"
wrapper --hostfile "$work/hosts" info >"$work/hostfile.txt" 2>&1 || { cat "$work/hostfile.txt"; fail "--hostfile info failed"; }
expect_in "$work/hostfile.txt" "world: 2 rank(s) on 1 node(s)" "every slot of the host file started a rank"
expect_in "$work/hostfile.txt" "--hostfile $work/hosts" "the host file was passed to mpirun"

refused() {  # refused WHAT TEXT ARGS...: exit status 2 and the script's message
  local what=$1 text=$2 status=0
  shift 2
  wrapper "$@" >"$work/refused.txt" 2>&1 || status=$?
  [[ $status -eq 2 ]] || { cat "$work/refused.txt" >&2; fail "$what: exit status $status, expected 2"; }
  expect_in "$work/refused.txt" "$text" "$what is refused with the reason"
}
refused "-n 0" "mpirun.sh: -n 0" -n 0 info
refused "-n abc" "mpirun.sh: -n abc" -n abc info
refused "a missing subcommand" "no longnet subcommand" -n 2
refused "--bind cores past the cores" "--bind cores:" -n "$(($(nproc) + 1))" --threads 1 --bind cores info
refused "a missing host file" "--hostfile $work/none" --hostfile "$work/none" info
echo "PASS"
