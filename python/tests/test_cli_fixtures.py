"""The Python op against the `longnet attend` command on the shipped examples."""

import os
import pathlib
import subprocess

import h5py
import numpy as np
import pytest

import longnet
from longnet._ops import dilated_attention_backward
from conftest import FIXTURES, ROOT

BINARY = pathlib.Path(os.environ.get("LONGNET_BINARY", ROOT / "build" / "launch" / "longnet"))
EXAMPLES = sorted(FIXTURES.glob("example_*.h5"))


def test_examples_exist():
    assert EXAMPLES, f"no examples under {FIXTURES}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_outputs_equal_the_cli(path, tmp_path):
    if not BINARY.exists():
        pytest.fail(f"the longnet binary is not at {BINARY}: build it or set LONGNET_BINARY")
    out = tmp_path / "out.h5"
    subprocess.run([str(BINARY), "attend", "--in", str(path), "--out", str(out), "--quiet"],
                   check=True)
    with h5py.File(path, "r") as f, h5py.File(out, "r") as cli:
        q, k, v = (np.asarray(f[n]) for n in ("q", "k", "v"))
        w = [int(x) for x in f.attrs["segment_lengths"]]
        r = [int(x) for x in f.attrs["dilation_rates"]]
        causal = bool(f.attrs["causal"])
        scheme = f.attrs["head_offsets"]
        scheme = scheme.decode() if isinstance(scheme, bytes) else str(scheme)
        o, lse = longnet.dilated_attention(q, k, v, w, r, causal=causal, head_offsets=scheme)
        np.testing.assert_allclose(o, cli["o"], atol=1e-6, rtol=1e-5)
        np.testing.assert_allclose(lse, cli["lse"], atol=1e-6, rtol=1e-5)
        if "do" in f:
            grads = dilated_attention_backward(q, k, v, o, lse, np.asarray(f["do"]), w, r,
                                               causal=causal, head_offsets=scheme)
            for name, grad in zip(("dq", "dk", "dv"), grads):
                np.testing.assert_allclose(grad, cli[name], atol=1e-6, rtol=1e-5, err_msg=name)
