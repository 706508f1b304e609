#!/usr/bin/env bash
# Runs any longnet subcommand under Open MPI's mpirun, on this node or on the hosts of a
# host file, with the flags a LongNet run needs (root, oversubscription, binding, OpenMP
# threads per rank) chosen in one place.
#
#   bash launch/mpirun.sh [OPTIONS] [--] SUBCOMMAND [ARGS...]
#
#   -n, --np RANKS        ranks (default: $RANKS, else 2 on one node; with --hostfile, every
#                         slot the host file lists)
#   --hostfile FILE       run on the hosts of FILE (Open MPI syntax: "host slots=N" lines);
#                         the same paths (repository, build, data) must exist on every host
#   --threads T           OpenMP threads per rank (default: $OMP_NUM_THREADS, else on one
#                         node the cores divided among the ranks, at least 1; with a host
#                         file 1, since this node's core count says nothing of the others)
#   --bind none|cores     none (default: $LONGNET_BIND, else none): ranks float, which is
#                         right when ranks share cores or the OS should place the threads;
#                         cores: each rank pinned to T cores of its own (map-by slot:PE=T),
#                         refused on one node when RANKS x T exceeds the cores
#   --mpirun-arg ARG      one more mpirun argument, before the program (repeatable; one
#                         word each), e.g. --mpirun-arg --report-bindings
#   -h, --help            this text
#
# Everything from SUBCOMMAND on goes to longnet unchanged, e.g.
#   bash launch/mpirun.sh -n 4 train --set parallel.sp=2 --set optimizer.max_steps=50
#   bash launch/mpirun.sh -n 2 attend --in q.h5 --out o.h5 --stats
#   bash launch/mpirun.sh --hostfile hosts.txt --bind cores --threads 8 bench scaling --mode weak
#
# Environment (defaults in brackets):
#   BUILD_DIR [build]                 build directory, relative to the repository root or absolute
#   LONGNET_BIN [BUILD_DIR/launch/longnet]
#   MPIRUN [mpirun]                   the launcher (Open MPI 4's mpirun; the flags are Open MPI's)
#   RANKS, OMP_NUM_THREADS, LONGNET_BIND   defaults of -n, --threads, --bind
#   NCCL_*                            every NCCL_ variable set here (NCCL_SOCKET_IFNAME, say) is
#                                     forwarded to all ranks, as OMP_NUM_THREADS is
# As root (containers, CI), OMPI_ALLOW_RUN_AS_ROOT is set: Open MPI refuses root otherwise.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "mpirun.sh: $*" >&2; exit 2; }

ranks=${RANKS:-}
hostfile=""
threads=${OMP_NUM_THREADS:-}
bind=${LONGNET_BIND:-none}
extra=()
while (($#)); do
  case $1 in
    -n | --np | -np) (($# >= 2)) || die "$1 needs a value"; ranks=$2; shift 2 ;;
    --np=*) ranks=${1#*=}; shift ;;
    --hostfile) (($# >= 2)) || die "$1 needs a value"; hostfile=$2; shift 2 ;;
    --hostfile=*) hostfile=${1#*=}; shift ;;
    --threads) (($# >= 2)) || die "$1 needs a value"; threads=$2; shift 2 ;;
    --threads=*) threads=${1#*=}; shift ;;
    --bind) (($# >= 2)) || die "$1 needs a value"; bind=$2; shift 2 ;;
    --bind=*) bind=${1#*=}; shift ;;
    --mpirun-arg) (($# >= 2)) || die "$1 needs a value"; extra+=("$2"); shift 2 ;;
    --mpirun-arg=*) extra+=("${1#*=}"); shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    -*) die "unknown option $1 (options come before the longnet subcommand; see --help)" ;;
    *) break ;;
  esac
done
(($#)) || die "no longnet subcommand given (e.g. train, attend, bench scaling); see --help"
# Checked before any arithmetic below uses them: `-n 0` would divide by zero there, and
# `-n abc` would be read by (( )) as a variable name (unbound under set -u).
[[ -z $ranks || $ranks =~ ^[1-9][0-9]*$ ]] || die "-n $ranks: a positive number of ranks, please"
[[ -z $threads || $threads =~ ^[1-9][0-9]*$ ]] || die "--threads $threads: a positive number of threads, please"

build=${BUILD_DIR:-build}
[[ $build == /* ]] || build=$root/$build
longnet=${LONGNET_BIN:-$build/launch/longnet}
[[ -x $longnet ]] || die "$longnet is missing; run bash launch/setup.sh (or set BUILD_DIR / LONGNET_BIN)"
mpirun=${MPIRUN:-mpirun}
command -v "$mpirun" >/dev/null || die "$mpirun not found; run bash launch/setup.sh (it installs openmpi-bin)"

cores=$(nproc)
flags=()
if [[ -n $hostfile ]]; then
  [[ -r $hostfile ]] || die "--hostfile $hostfile: no such readable file"
  flags+=(--hostfile "$hostfile")
  [[ -z $ranks ]] || flags+=(-np "$ranks")
  threads=${threads:-1}
else
  ranks=${ranks:-2}
  flags+=(-np "$ranks")
  threads=${threads:-$((cores / ranks > 0 ? cores / ranks : 1))}
fi

case $bind in
  none)
    flags+=(--bind-to none)
    # More ranks than cores on one node: Open MPI refuses unless told. Only on one node,
    # where the count is known; a host file's slots are mpirun's business.
    if [[ -z $hostfile ]] && ((ranks > cores)); then flags+=(--oversubscribe); fi
    ;;
  cores)
    if [[ -z $hostfile ]] && ((ranks * threads > cores)); then
      die "--bind cores: $ranks ranks x $threads threads need $((ranks * threads)) cores, this node has $cores; use fewer, or --bind none"
    fi
    flags+=(--map-by "slot:PE=$threads" --bind-to core)
    ;;
  *) die "--bind $bind: use none or cores" ;;
esac

export OMP_NUM_THREADS=$threads
flags+=(-x OMP_NUM_THREADS)
for name in "${!NCCL_@}"; do flags+=(-x "$name"); done
if [[ $(id -u) -eq 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

echo "mpirun.sh: $mpirun ${flags[*]} ${extra[*]} $longnet $*" >&2
exec "$mpirun" "${flags[@]}" "${extra[@]}" "$longnet" "$@"
