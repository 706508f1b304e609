# shellcheck shell=bash
# A throw-away single-node Slurm cluster for the tests, sourced by tests/launch/slurm/test_*.sh:
#
#   source tests/launch/slurm/slurm_cluster.sh
#   cluster_start            # munged, slurmctld, slurmd in a new temporary directory
#   id=$(sbatch --parsable ...); cluster_wait_gone "$id" 120
#   cluster_stop             # also run by the EXIT trap cluster_start installs
#
# Everything lives in one directory from `mktemp -d /tmp/lns.XXXX` (CLUSTER_DIR): the
# munge key, socket and pid file, slurm.conf, the controller's state and the node's spool.
# Its path is short on purpose: Slurm and PMIx put unix sockets under SlurmdSpoolDir, and
# a socket path must fit in 107 bytes. Nothing of the machine's own Slurm or munge
# (/etc/slurm, /run/munge) is read or touched: SLURM_CONF points every Slurm command at
# this cluster, and AuthInfo points Slurm at this munged's socket. The daemons listen on
# ports that were free a moment before, and talk over 127.0.0.1 only.
#
# Facts this configuration rests on (Debian 12, Slurm 22.05, munge 0.5.15, no systemd):
#   - no cgroups: ProctrackType=proctrack/linuxproc, TaskPlugin=task/none, no accounting;
#   - munged refuses a socket directory that is not mode 0755;
#   - the daemons run as root (SlurmUser=root), so the tests need root;
#   - `sbatch --wait` polls slowly: cluster_wait_* poll squeue instead;
#   - the first job after a start takes about 3 s to begin.
# The daemons are stopped by the PIDs in their pid files, never by name.

cluster_log() { echo "[slurm-cluster] $*" >&2; }

# Fails (exit 1) when a Slurm or munge program is missing: launch/setup.sh installs them,
# so a missing one is a broken setup, not a reason to skip.
cluster_require_programs() {
  local missing=() program
  for program in munged slurmctld slurmd slurmstepd sbatch srun squeue scontrol scancel sinfo; do
    command -v "$program" >/dev/null || missing+=("$program")
  done
  if ((${#missing[@]})); then
    cluster_log "FAIL: missing ${missing[*]}; run bash launch/setup.sh (it installs munge, slurmctld, slurmd and slurm-client)"
    exit 1
  fi
}

# Prints a TCP port on 127.0.0.1 that was free when asked (the kernel's choice).
cluster_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cluster_write_config() {
  local host=$1 cpus=$2 ctld_port=$3 slurmd_port=$4
  # This shell's PID is unique among running processes; pid_max (at most 2^22) times 10
  # stays below Slurm's largest job id (MaxJobId, 67043328 by default).
  local first_job_id=$(($$ * 10))
  cat >"$CLUSTER_DIR/slurm.conf" <<EOF
# Written by tests/launch/slurm/slurm_cluster.sh for one test run.
ClusterName=lns
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
CredType=cred/munge
# cred_expire is also how long a requeued job waits before it may start again (default
# 120 s); 10 s keeps the preemption test short.
AuthInfo=socket=$CLUSTER_DIR/munge.sock,cred_expire=10
StateSaveLocation=$CLUSTER_DIR/ctld
SlurmdSpoolDir=$CLUSTER_DIR/spool
# Where slurmd and its PMIx server put scratch files (default /tmp).
TmpFS=$CLUSTER_DIR/tmp
SlurmctldPidFile=$CLUSTER_DIR/slurmctld.pid
SlurmdPidFile=$CLUSTER_DIR/slurmd.pid
SlurmctldLogFile=$CLUSTER_DIR/slurmctld.log
SlurmdLogFile=$CLUSTER_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups on the test machine: track processes by their parent, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
# Start a submitted batch job at once rather than batching submissions.
SchedulerParameters=batch_sched_delay=0,sched_interval=1,bf_interval=1
MpiDefault=pmix
ReturnToService=2
# Jobs stay visible to squeue/scontrol for a while after they end (their final state).
MinJobAge=600
# Job ids unique among test clusters running side by side (ctest -j): Open MPI names its
# shared-memory segments after the job and step, and two jobs 1.0 would map each other's.
FirstJobId=$first_job_id
MailProg=/bin/true
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

# Waits up to $2 seconds for the file $1 to exist and name a live process.
cluster_wait_pid_file() {
  local file=$1 limit=$2 waited=0
  while ((waited < limit * 10)); do
    if [[ -s $file ]] && kill -0 "$(cat "$file")" 2>/dev/null; then return 0; fi
    sleep 0.1
    waited=$((waited + 1))
  done
  return 1
}

cluster_start() {
  cluster_require_programs
  if [[ $(id -u) -ne 0 ]]; then
    cluster_log "SKIP: these tests start slurmctld and slurmd as root (SlurmUser=root); run them as root"
    exit 77
  fi
  CLUSTER_DIR=$(mktemp -d /tmp/lns.XXXX)
  trap cluster_stop EXIT
  # A test stopped by TERM or INT still stops its daemons (they are outside its process
  # group); one killed outright (ctest's TIMEOUT) leaves that to the watchdog.
  trap 'exit 143' TERM
  trap 'exit 130' INT
  # shellcheck disable=SC2016  # $0 and $1 belong to the inner shell
  CLUSTER_DIR=$CLUSTER_DIR setsid bash -c 'source "$0"; cluster_watchdog "$1"' \
    "${BASH_SOURCE[0]}" "$$" </dev/null >/dev/null 2>&1 &
  chmod 0755 "$CLUSTER_DIR"  # munged checks its socket directory
  mkdir -p "$CLUSTER_DIR/ctld" "$CLUSTER_DIR/spool" "$CLUSTER_DIR/tmp"

  head -c 1024 /dev/urandom >"$CLUSTER_DIR/munge.key"
  chmod 0600 "$CLUSTER_DIR/munge.key"
  munged --socket="$CLUSTER_DIR/munge.sock" --key-file="$CLUSTER_DIR/munge.key" \
    --pid-file="$CLUSTER_DIR/munged.pid" --log-file="$CLUSTER_DIR/munged.log" \
    --seed-file="$CLUSTER_DIR/munged.seed" \
    || { cluster_log "munged failed to start"; cluster_dump_logs; exit 1; }
  cluster_wait_pid_file "$CLUSTER_DIR/munged.pid" 10 \
    || { cluster_log "munged did not start"; cluster_dump_logs; exit 1; }

  local host
  host=$(hostname -s)
  cluster_write_config "$host" "$(nproc)" "$(cluster_free_port)" "$(cluster_free_port)"
  export SLURM_CONF=$CLUSTER_DIR/slurm.conf
  # -i: ignore any saved state (there is none; a fresh directory).
  slurmctld -i -f "$SLURM_CONF" || { cluster_log "slurmctld failed"; cluster_dump_logs; exit 1; }
  cluster_wait_pid_file "$CLUSTER_DIR/slurmctld.pid" 20 \
    || { cluster_log "slurmctld did not start"; cluster_dump_logs; exit 1; }
  slurmd -f "$SLURM_CONF" || { cluster_log "slurmd failed"; cluster_dump_logs; exit 1; }
  cluster_wait_pid_file "$CLUSTER_DIR/slurmd.pid" 20 \
    || { cluster_log "slurmd did not start"; cluster_dump_logs; exit 1; }

  # The node registers with the controller within a second or two.
  local waited=0 state=""
  while ((waited < 300)); do
    state=$(sinfo -h -N -o %t 2>/dev/null | head -n 1)
    [[ $state == idle ]] && break
    sleep 0.1
    waited=$((waited + 1))
  done
  if [[ $state != idle ]]; then
    cluster_log "the node did not become idle (state '$state')"
    cluster_dump_logs
    exit 1
  fi
  cluster_log "up in $CLUSTER_DIR: node $host, $(nproc) CPUs"
}

cluster_dump_logs() {
  local log
  for log in "$CLUSTER_DIR"/munged.log "$CLUSTER_DIR"/slurmctld.log "$CLUSTER_DIR"/slurmd.log; do
    [[ -f $log ]] || continue
    echo "---- last lines of $(basename "$log") ----" >&2
    tail -n 30 "$log" >&2
  done
}

# Stops one daemon by the PID in its pid file: TERM, up to 10 s, then KILL.
cluster_stop_daemon() {
  local file=$1 pid waited=0
  [[ -s $file ]] || return 0
  pid=$(cat "$file")
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null && ((waited < 100)); do
    sleep 0.1
    waited=$((waited + 1))
  done
  if kill -0 "$pid" 2>/dev/null; then
    cluster_log "$(basename "$file" .pid) ($pid) ignored TERM for 10 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
}

cluster_stop() {
  local status=$?
  [[ -n ${CLUSTER_DIR:-} && -d $CLUSTER_DIR ]] || return "$status"
  if ((status != 0)) && [[ $status -ne 77 ]]; then cluster_dump_logs; fi
  # Jobs first, so no slurmstepd outlives slurmd; then the node, the controller, munge.
  if [[ -s $CLUSTER_DIR/slurmctld.pid ]]; then
    scancel --full --quiet --user=root 2>/dev/null || true
    local waited=0
    while [[ -n $(squeue -h -t running,completing -o %i 2>/dev/null) ]] && ((waited < 100)); do
      sleep 0.1
      waited=$((waited + 1))
    done
  fi
  cluster_stop_daemon "$CLUSTER_DIR/slurmd.pid"
  cluster_stop_daemon "$CLUSTER_DIR/slurmctld.pid"
  cluster_stop_daemon "$CLUSTER_DIR/munged.pid"
  rm -rf "$CLUSTER_DIR"
  CLUSTER_DIR=""
  return "$status"
}

# Run detached by cluster_start: once the test process $1 is gone, stops the cluster it
# left behind (a test killed with SIGKILL runs no EXIT trap). Does nothing after a
# normal cluster_stop, which removes CLUSTER_DIR.
cluster_watchdog() {
  local owner=$1
  while kill -0 "$owner" 2>/dev/null; do sleep 1; done
  [[ -d $CLUSTER_DIR ]] || return 0
  export SLURM_CONF=$CLUSTER_DIR/slurm.conf
  cluster_stop
}

# The job's state as squeue prints it (PENDING, RUNNING, COMPLETED, ...), "" if unknown.
cluster_job_state() {
  squeue -h -j "$1" -t all -o %T 2>/dev/null | head -n 1
}

# Waits up to $2 seconds for job $1 to be in state $3 (a squeue state name).
cluster_wait_state() {
  local job=$1 limit=$2 want=$3 waited=0 state=""
  while ((waited < limit * 5)); do
    state=$(cluster_job_state "$job")
    [[ $state == "$want" ]] && return 0
    sleep 0.2
    waited=$((waited + 1))
  done
  cluster_log "job $job: state '$state' after $limit s, expected $want"
  return 1
}

# Waits up to $2 seconds for job $1 to end; prints its final state.
cluster_wait_done() {
  local job=$1 limit=$2 waited=0 state=""
  while ((waited < limit * 5)); do
    state=$(cluster_job_state "$job")
    case $state in
      COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED)
        echo "$state"
        return 0
        ;;
    esac
    sleep 0.2
    waited=$((waited + 1))
  done
  cluster_log "job $job: still '$state' after $limit s"
  echo "$state"
  return 1
}
