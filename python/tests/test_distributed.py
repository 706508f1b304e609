"""The sequence-parallel layer under `mpirun -np 2` (distributed_check.py)."""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

import longnet

SCRIPT = pathlib.Path(__file__).with_name("distributed_check.py")


def test_sequence_shard_is_balanced():
    assert [longnet.sequence_shard(7, 3, r) for r in range(3)] == [(0, 3), (3, 5), (5, 7)]
    with pytest.raises(ValueError, match="rank 3 is outside a world of 3"):
        longnet.sequence_shard(7, 3, 3)


def test_distributed_rejects_a_non_communicator():
    with pytest.raises(TypeError, match="mpi4py communicator"):
        longnet.DilatedAttention(16, 2, 1, 8, distributed="world")


@pytest.mark.parametrize("ranks", [2])
def test_mpirun_equals_one_process(ranks):
    assert longnet._C.mpi_built(), "this build has no MPI"
    mpirun = shutil.which("mpirun")
    assert mpirun, "mpirun is not installed (launch/setup.sh installs openmpi-bin)"
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS="1")
    result = subprocess.run([mpirun, "-np", str(ranks), "--oversubscribe", "--bind-to", "none",
                             sys.executable, str(SCRIPT)], capture_output=True, text=True,
                            env=env, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" ok") == ranks, result.stdout
