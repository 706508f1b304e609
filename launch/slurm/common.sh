# shellcheck shell=bash
# Shared by launch/slurm/train.sbatch and launch/slurm/scaling.sbatch, sourced inside the
# batch job: finds the repository and the binary, checks the rank layout (one rank per GPU
# on GPU nodes), sets OpenMP threads, and builds the srun command every step uses.
#
# Slurm runs a copy of the batch script from its spool directory, so the scripts cannot
# find the repository from their own path: it is LONGNET_ROOT, by default the directory
# sbatch was called from (SLURM_SUBMIT_DIR). Paths below are relative to it.
#
# Environment (defaults in brackets), read when the job starts:
#   LONGNET_ROOT [SLURM_SUBMIT_DIR]   the repository (shared by all nodes)
#   LONGNET_BUILD_DIR [build]         its build directory (launch/setup.sh builds it)
#   LONGNET_BIN [LONGNET_BUILD_DIR/launch/longnet]
#   LONGNET_GPUS_PER_NODE [SLURM_GPUS_ON_NODE, else 0]   0: CPU nodes
#   LONGNET_CPU_BIND [unset: the site's default]   srun --cpu-bind value, e.g. cores
#   OMP_NUM_THREADS [SLURM_CPUS_PER_TASK, else 1]  OpenMP threads per rank
#   NCCL_SOCKET_IFNAME [unset: NCCL picks]   like every variable set at submit time, it
#                                    reaches the ranks (sbatch and srun export all)

longnet_log() { printf '[longnet-slurm %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
longnet_die() {
  longnet_log "ERROR: $*" >&2
  exit 2
}

# Sets: longnet (the binary), longnet_srun (srun and its flags; append the program),
# gpus_per_node, restarts. Changes into LONGNET_ROOT.
longnet_job_setup() {
  [[ -n ${SLURM_JOB_ID:-} ]] || longnet_die "not inside a Slurm job; submit this script with sbatch"
  LONGNET_ROOT=${LONGNET_ROOT:-${SLURM_SUBMIT_DIR:-$PWD}}
  cd "$LONGNET_ROOT" || longnet_die "cannot enter LONGNET_ROOT=$LONGNET_ROOT"
  local build=${LONGNET_BUILD_DIR:-build}
  longnet=${LONGNET_BIN:-$build/launch/longnet}
  [[ -x $longnet ]] || longnet_die "$LONGNET_ROOT/$longnet is missing: run bash launch/setup.sh, or set LONGNET_BUILD_DIR / LONGNET_BIN"
  [[ $longnet == /* ]] || longnet=$PWD/$longnet

  restarts=${SLURM_RESTART_COUNT:-0}
  gpus_per_node=${LONGNET_GPUS_PER_NODE:-${SLURM_GPUS_ON_NODE:-0}}
  local per_node=${SLURM_NTASKS_PER_NODE:-}
  if ((gpus_per_node > 0)); then
    # One rank per GPU: longnet gives node-local rank i the device i, and NCCL wants one
    # device per rank. Fewer ranks would idle GPUs, more would share them.
    [[ $per_node == "$gpus_per_node" ]] ||
      longnet_die "$gpus_per_node GPUs per node but ${per_node:-an unspecified number of} ranks per node: submit with --gpus-per-node=$gpus_per_node --ntasks-per-node=$gpus_per_node (one rank per GPU)"
  fi

  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}
  longnet_srun=(srun --mpi=pmix --kill-on-bad-exit=1)
  # Since Slurm 22.05 srun no longer takes --cpus-per-task from the job: pass it on.
  [[ -z ${SLURM_CPUS_PER_TASK:-} ]] || longnet_srun+=(--cpus-per-task="$SLURM_CPUS_PER_TASK")
  [[ -z ${LONGNET_CPU_BIND:-} ]] || longnet_srun+=(--cpu-bind="$LONGNET_CPU_BIND")

  longnet_log "job $SLURM_JOB_ID ($SLURM_JOB_NAME), start $((restarts + 1)) (restart count $restarts), on $SLURM_JOB_NODELIST"
  longnet_log "ranks $SLURM_NTASKS over $SLURM_JOB_NUM_NODES node(s) (per node: ${per_node:-${SLURM_TASKS_PER_NODE:-?}}); GPUs per node $gpus_per_node; OpenMP threads per rank $OMP_NUM_THREADS; NCCL_SOCKET_IFNAME ${NCCL_SOCKET_IFNAME:-(unset)}"
  longnet_log "binary $longnet; steps run as: ${longnet_srun[*]}"
}
