#!/usr/bin/env bash
# Two ranks of `longnet attend` under Slurm write the same outputs as one process.
#
#   bash tests/launch/slurm/test_slurm_attend.sh LONGNET_BINARY SOURCE_DIR
#
# On a real single-node Slurm (tests/launch/slurm/slurm_cluster.sh), a 2-task batch job runs the
# job setup of launch/slurm/common.sh and its srun command (srun --mpi=pmix: Open MPI wires
# up through Slurm's PMIx server, no mpirun). Input: a fixture with do, so the forward
# (o, lse) and the backward (dq, dk, dv) are both compared with a one-process run, to the
# relative L2 of tests/launch/test_attend_mpi.cpp (1e-5).
set -euo pipefail
longnet=$1
source_dir=$2
here=$source_dir/tests/launch/slurm
# shellcheck source=tests/launch/slurm/slurm_cluster.sh
source "$here/slurm_cluster.sh"
# shellcheck source=tests/launch/slurm/test_support.sh
source "$here/test_support.sh"

fixture=$source_dir/tests/fixtures/example_noncausal_grouped_w64-128-512_r1-2-4_N300_B2_H5_D16_grad.h5
python=$(pick_python) || exit 1
cluster_start
work=$CLUSTER_DIR/work
mkdir -p "$work"

echo "== one process"
OMP_NUM_THREADS=1 "$longnet" attend --in "$fixture" --out "$work/one.h5" --quiet ||
  test_fail "the one-process run failed"

echo "== two ranks under Slurm"
cat >"$work/attend.sbatch" <<EOF
#!/usr/bin/env bash
set -euo pipefail
source launch/slurm/common.sh
longnet_job_setup
"\${longnet_srun[@]}" "\$longnet" attend --in "$fixture" --out "$work/two.h5" --stats
EOF
job=$(cd "$source_dir" && LONGNET_BIN=$longnet sbatch --parsable --ntasks=2 \
  --output="$work/attend-%j.out" "$work/attend.sbatch")
state=$(cluster_wait_done "$job" 60) || test_fail "job $job did not finish in 60 s"
output=$work/attend-$job.out
echo "---- $output ----"
cat "$output"
[[ $state == COMPLETED ]] || test_fail "job $job ended $state, expected COMPLETED"
expect_line "$output" 'steps run as: srun --mpi=pmix' "the step was launched by srun --mpi=pmix"
expect_line "$output" '2 rank\(s\)' "longnet attend ran on 2 ranks"
expect_line "$output" '^ +1 +150 ' "rank 1 held tokens 150..299 (the traffic table)"

"$python" "$here/compare_h5.py" "$work/two.h5" "$work/one.h5" --rtol 1e-5 \
  --datasets o,lse,dq,dk,dv || test_fail "2 ranks under Slurm differ from one process"
echo "PASS"
