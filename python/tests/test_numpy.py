"""The op on NumPy arrays, and NumPy-only use with torch unavailable."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import longnet
from reference import reference


def random_qkv(shape, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal(shape).astype(dtype) for _ in range(3))


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("scheme", ["interleaved", "grouped"])
def test_forward_matches_the_float64_reference(causal, scheme):
    q, k, v = random_qkv((2, 40, 4, 16))
    o, lse = longnet.dilated_attention(q, k, v, [8, 16], [1, 2], causal=causal,
                                       head_offsets=scheme)
    want_o, want_lse = reference(q.astype(np.float64), k.astype(np.float64),
                                 v.astype(np.float64), [8, 16], [1, 2], causal, scheme)
    assert o.shape == (2, 40, 4, 16) and lse.shape == (2, 40, 4)
    assert o.dtype == np.float32
    np.testing.assert_allclose(o, want_o, atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose(lse, want_lse, atol=2e-5, rtol=1e-4)


def test_scale_is_applied():
    q, k, v = random_qkv((1, 16, 2, 8), seed=3)
    o, lse = longnet.dilated_attention(q, k, v, 16, 1, scale=0.5)
    want_o, want_lse = reference(q.astype(np.float64), k.astype(np.float64),
                                 v.astype(np.float64), [16], [1], scale=0.5)
    np.testing.assert_allclose(o, want_o, atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose(lse, want_lse, atol=2e-5, rtol=1e-4)


def test_backward_matches_finite_differences_of_the_reference():
    q, k, v = random_qkv((1, 12, 2, 4), seed=5)
    o, lse = longnet.dilated_attention(q, k, v, [4, 12], [1, 3], causal=True)
    dout = np.random.default_rng(9).standard_normal(o.shape).astype(np.float32)
    from longnet._ops import dilated_attention_backward
    grads = dilated_attention_backward(q, k, v, o, lse, dout, [4, 12], [1, 3], causal=True)
    inputs = [x.astype(np.float64) for x in (q, k, v)]

    def loss(args):
        return float((reference(*args, [4, 12], [1, 3], True)[0] * dout).sum())

    eps = 1e-6
    for which, grad in enumerate(grads):
        numeric = np.zeros_like(inputs[which])
        for index in np.ndindex(*inputs[which].shape):
            plus = [x.copy() for x in inputs]
            minus = [x.copy() for x in inputs]
            plus[which][index] += eps
            minus[which][index] -= eps
            numeric[index] = (loss(plus) - loss(minus)) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, atol=1e-4, rtol=1e-3)


def test_numpy_use_does_not_import_torch():
    script = textwrap.dedent("""
        import sys
        sys.modules["torch"] = None  # any import of torch now fails
        import numpy as np
        import longnet
        q = np.ones((1, 8, 2, 4), dtype=np.float32)
        o, lse = longnet.dilated_attention(q, q, q, [4], [1])
        assert o.shape == (1, 8, 2, 4) and np.isfinite(o).all()
        np.testing.assert_allclose(o, 1.0, rtol=1e-6)  # softmax-weighted mean of ones
        print("numpy-only ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "numpy-only ok" in result.stdout


def test_version_and_docstrings():
    assert longnet.__version__ == "0.1.0"
    assert "segment_lengths" in longnet.dilated_attention.__doc__
