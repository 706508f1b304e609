"""Every bad argument is a Python exception that names it, never a crash."""

import numpy as np
import pytest
import torch

import longnet
from longnet import DilatedAttention


def arrays(shape=(1, 16, 2, 8), dtype=np.float32):
    return tuple(np.zeros(shape, dtype=dtype) for _ in range(3))


def test_wrong_rank_names_the_tensor():
    q, k, v = arrays()
    with pytest.raises(ValueError, match="q must have rank 4"):
        longnet.dilated_attention(q[0], k, v, 8, 1)
    with pytest.raises(ValueError, match="k"):
        longnet.dilated_attention(q, k[0], v, 8, 1)


def test_mismatched_shapes_name_the_tensor():
    q, k, v = arrays()
    with pytest.raises(ValueError, match=r"v \(must match q\)"):
        longnet.dilated_attention(q, k, v[:, :8], 8, 1)


def test_wrong_dtype_is_an_error_not_a_conversion():
    q, k, v = arrays(dtype=np.float64)
    with pytest.raises(ValueError, match="q must be float32"):
        longnet.dilated_attention(q, k, v, 8, 1)
    q, k, v = (torch.zeros(1, 16, 2, 8, dtype=torch.float64) for _ in range(3))
    with pytest.raises(ValueError, match="q must be float32"):
        longnet.dilated_attention(q, k, v, 8, 1)


def test_non_contiguous_input_is_an_error():
    q, k, v = arrays((1, 16, 2, 8))
    with pytest.raises(ValueError, match="k is not contiguous"):
        longnet.dilated_attention(q, np.ascontiguousarray(k.transpose(0, 2, 1, 3))
                                  .transpose(0, 2, 1, 3), v, 8, 1)
    t = torch.zeros(1, 2, 16, 8).transpose(1, 2)
    with pytest.raises(ValueError, match="q is not contiguous"):
        longnet.dilated_attention(t, t.contiguous(), t.contiguous(), 8, 1)


@pytest.mark.parametrize("w, r, pattern", [(0, 1, "segment_lengths must be positive"),
                                            (8, 0, "dilation_rates must be positive"),
                                            (-4, 1, "segment_lengths must be positive"),
                                            (8, 16, "dilation")])
def test_w_and_r_must_be_positive(w, r, pattern):
    q, k, v = arrays()
    with pytest.raises(ValueError, match=pattern):
        longnet.dilated_attention(q, k, v, w, r)


def test_pattern_lists_must_match():
    q, k, v = arrays()
    with pytest.raises(ValueError, match="same length"):
        longnet.dilated_attention(q, k, v, [8, 16], [1])


def test_bad_head_offsets_and_scale():
    q, k, v = arrays()
    with pytest.raises(ValueError, match="head_offsets"):
        longnet.dilated_attention(q, k, v, 8, 1, head_offsets="striped")
    with pytest.raises(ValueError, match="scale"):
        longnet.dilated_attention(q, k, v, 8, 1, scale=-1.0)


def test_read_only_output_is_refused():
    q, k, v = arrays()
    out = np.zeros_like(q)
    lse = np.zeros(q.shape[:3], dtype=np.float32)
    out.flags.writeable = False
    with pytest.raises(TypeError):
        longnet._C.forward(q, k, v, out, lse, [8], [1], False, "interleaved", None)


def test_module_arguments():
    with pytest.raises(ValueError, match="dim 10 must be divisible by heads 4"):
        DilatedAttention(dim=10, heads=4, dilation_rate=1, segment_size=8)
    with pytest.raises(ValueError, match="dilation_rate must be positive"):
        DilatedAttention(dim=16, heads=2, dilation_rate=0, segment_size=8)
    with pytest.raises(ValueError, match="segment_size must be positive"):
        DilatedAttention(dim=16, heads=2, dilation_rate=1, segment_size=-8)
    with pytest.raises(ValueError, match="dropout"):
        DilatedAttention(dim=16, heads=2, dilation_rate=1, segment_size=8, dropout=1.5)
    with pytest.raises(ValueError, match="must be even"):
        DilatedAttention(dim=18, heads=2, dilation_rate=1, segment_size=8, use_xpos=True)
    with pytest.raises(ValueError, match="rel_pos_buckets 2"):
        DilatedAttention(dim=16, heads=2, dilation_rate=1, segment_size=8,
                         use_rel_pos_bias=True, rel_pos_buckets=2)
    layer = DilatedAttention(dim=16, heads=2, dilation_rate=1, segment_size=8)
    with pytest.raises(ValueError, match=r"x must have shape \[batch, tokens, dim=16\]"):
        layer(torch.zeros(2, 8, 12))


def test_cuda_tensors_without_cuda_kernels_are_an_error():
    if longnet.cuda_kernels_built() or not torch.cuda.is_available():
        pytest.skip("needs a GPU with a build without the CUDA kernels")
    q = torch.zeros(1, 16, 2, 8, device="cuda")
    with pytest.raises(ValueError, match="no CUDA kernels"):
        longnet.dilated_attention(q, q, q, 8, 1)
