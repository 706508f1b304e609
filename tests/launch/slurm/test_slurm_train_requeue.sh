#!/usr/bin/env bash
# A training job preempted mid-run resumes from its checkpoint to the same result as an
# uninterrupted run.
#
#   bash tests/launch/slurm/test_slurm_train_requeue.sh LONGNET_BINARY SOURCE_DIR
#
# On a real single-node Slurm (tests/launch/slurm/slurm_cluster.sh): launch/slurm/train.sbatch
# trains a tiny model for 300 steps on 2 ranks (srun --mpi=pmix). Once some steps are
# logged, the test sends USR1 to the batch shell, as Slurm does before the time limit
# (--signal=B:USR1@...). The script must forward it, the step must checkpoint at a step
# before the last and exit, the script must requeue the job, and the second start must
# resume from that step. Its JSON log (both starts) must then match, loss for loss, an
# uninterrupted 2-rank run of launch/mpirun.sh, and the final checkpoints must be equal
# bit for bit.
set -euo pipefail
longnet=$1
source_dir=$2
here=$source_dir/tests/launch/slurm
# shellcheck source=tests/launch/slurm/slurm_cluster.sh
source "$here/slurm_cluster.sh"
# shellcheck source=tests/launch/slurm/test_support.sh
source "$here/test_support.sh"

steps=300
python=$(pick_python) || exit 1
cluster_start
work=$CLUSTER_DIR/work
mkdir -p "$work"
make_corpus "$longnet" "$work/data"

# Tiny: 25k parameters, 64-token sequences; about 15 ms a step on 2 ranks of 2 cores.
# shellcheck disable=SC2054  # the commas are the config's list syntax
settings=(
  --set model.dim=32 --set model.heads=4 --set model.layers=2 --set model.ffn_dim=64
  --set model.segment_lengths=16,32,64 --set model.dilation_rates=1,2,4
  --set model.rel_pos_buckets=16 --set model.rel_pos_max_distance=64 --set model.dropout=0.1
  --set data.seq_len=64 --set data.batch_size=2
  --set "optimizer.max_steps=$steps" --set optimizer.warmup_steps=10
  --set eval.every=0 --set eval.batches=2 --set log.every=50 --set checkpoint.every=0
)

echo "== the uninterrupted reference: launch/mpirun.sh -n 2"
LONGNET_BIN=$longnet bash "$source_dir/launch/mpirun.sh" -n 2 --threads 1 \
  train --config "$source_dir/configs/tiny.toml" --set "data.dir=$work/data" \
  --set "checkpoint.dir=$work/reference" "${settings[@]}" --log-json "$work/reference.jsonl" \
  >"$work/reference.out" 2>&1 || { cat "$work/reference.out"; test_fail "the reference run failed"; }

echo "== the Slurm job: launch/slurm/train.sbatch"
job=$(cd "$source_dir" && LONGNET_BIN=$longnet LONGNET_CONFIG=$source_dir/configs/tiny.toml \
  LONGNET_DATA_DIR=$work/data LONGNET_CHECKPOINT_DIR=$work/checkpoints \
  sbatch --parsable --output="$work/train-%j.out" launch/slurm/train.sbatch "${settings[@]}")
output=$work/train-$job.out
log_json=$work/checkpoints/train.jsonl
cluster_wait_state "$job" 60 RUNNING || test_fail "job $job did not start"

# Preempt once at least 20 steps are logged (the signal takes a few steps to arrive).
logged() {
  local n
  n=$(grep -c '"loss"' "$log_json" 2>/dev/null) || true
  echo "${n:-0}"
}
waited=0
while (($(logged) < 20)); do
  ((waited < 600)) || test_fail "job $job logged fewer than 20 steps in 60 s"
  [[ $(cluster_job_state "$job") == RUNNING ]] || { cat "$output" >&2; test_fail "job $job ended before it could be preempted"; }
  sleep 0.1
  waited=$((waited + 1))
done
echo "== preempting job $job: scancel --batch --signal=USR1 (after $(logged) steps)"
scancel --batch --signal=USR1 "$job"

# The requeued job waits cred_expire (10 s here) before its second start.
state=$(cluster_wait_done "$job" 120) || test_fail "job $job did not finish after the requeue"
echo "---- $output ----"
cat "$output"
[[ $state == COMPLETED ]] || test_fail "job $job ended $state, expected COMPLETED"

restarts=$(scontrol show job "$job" | grep -Eo 'Restarts=[0-9]+' | cut -d= -f2)
[[ $restarts == 1 ]] || test_fail "job $job was started $((restarts + 1)) times, expected 2 (one requeue)"
echo "ok: the job was requeued once (Restarts=1)"

expect_line "$output" 'preemption: SIGUSR1 received; forwarding it to the training step' \
  "the batch shell forwarded USR1 to the step"
expect_line "$output" 'stop requested \(SIGTERM/SIGUSR1\): checkpoint written at step [0-9]+' \
  "the step checkpointed on the signal"
stopped=$(grep -Eo 'checkpoint written at step [0-9]+' "$output" | head -n 1 | grep -Eo '[0-9]+$')
((stopped > 0 && stopped < steps)) || test_fail "stopped at step $stopped, expected 0 < step < $steps"
echo "ok: preempted at step $stopped of $steps"
expect_line "$output" "preemption: checkpoint .*ckpt_0*$stopped\.h5 written; requeueing job $job" \
  "the batch shell requeued the job after the checkpoint"
expect_line "$output" "job $job \(longnet-train\), start 2 \(restart count 1\)" "the job started again"
expect_line "$output" "resumed from .*ckpt_0*$stopped\.h5 at step $stopped" \
  "the second start resumed from the preemption checkpoint"
expect_line "$output" "^done: $steps steps" "the second start finished training"

"$python" "$here/compare_train_logs.py" "$log_json" "$work/reference.jsonl" "$steps" ||
  test_fail "the preempted and resumed run differs from the uninterrupted one"
final=$(printf 'ckpt_%08d.h5' "$steps")
"$python" "$here/compare_h5.py" --exact "$work/checkpoints/$final" "$work/reference/$final" >/dev/null ||
  test_fail "the final checkpoints differ"
echo "ok: final checkpoints bitwise equal"
echo "PASS"
