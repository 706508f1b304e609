"""The op and the modules from PyTorch."""

import warnings

import numpy as np
import pytest
import torch

import longnet
from longnet import DilatedAttention, MultiModalDilatedAttention
from reference import reference


def test_the_documents_example_as_written():
    from longnet import DilatedAttention

    attention = DilatedAttention(dim=512, heads=8, dilation_rate=2, segment_size=16)
    x = torch.randn(4, 32, 512)
    y = attention(x)
    assert y.shape == (4, 32, 512)
    assert torch.isfinite(y).all()
    # The same computation written out with torch, through the float64 reference.
    with torch.no_grad():
        shape = (4, 32, 8, 64)
        q, k, v = (p(x).double().reshape(shape)
                   for p in (attention.q_proj, attention.k_proj, attention.v_proj))
        o, _ = reference(q, k, v, [16], [2], xp=torch)
        want = attention.out_proj(o.float().reshape(4, 32, 512))
    torch.testing.assert_close(y.detach(), want, atol=1e-4, rtol=1e-4)


def test_reference_passes_gradcheck_in_float64():
    q, k, v = (torch.randn(1, 12, 2, 4, dtype=torch.float64, requires_grad=True)
               for _ in range(3))
    assert torch.autograd.gradcheck(
        lambda a, b, c: reference(a, b, c, [4, 12], [1, 3], True, xp=torch)[0], (q, k, v))


@pytest.mark.parametrize("causal", [False, True])
def test_gradients_equal_the_float64_reference(causal):
    torch.manual_seed(0)
    inputs = [torch.randn(2, 24, 3, 8, requires_grad=True) for _ in range(3)]
    o, lse = longnet.dilated_attention(*inputs, [8, 24], [1, 2], causal=causal)
    assert not lse.requires_grad
    dout = torch.randn_like(o)
    grads = torch.autograd.grad(o, inputs, dout)

    doubles = [x.detach().double().requires_grad_() for x in inputs]
    want_o, want_lse = reference(*doubles, [8, 24], [1, 2], causal, xp=torch)
    want = torch.autograd.grad(want_o, doubles, dout.double())
    torch.testing.assert_close(o.detach().double(), want_o.detach(), atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(lse.double(), want_lse.detach(), atol=2e-5, rtol=1e-4)
    for got, expected in zip(grads, want):
        torch.testing.assert_close(got.double(), expected, atol=5e-5, rtol=1e-4)


def test_module_backward_reaches_every_parameter():
    layer = DilatedAttention(dim=32, heads=4, dilation_rate=2, segment_size=8, causal=True)
    x = torch.randn(2, 16, 32, requires_grad=True)
    layer(x).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
        assert getattr(layer, name).weight.grad.abs().sum() > 0, name


def test_causal_output_ignores_the_future():
    layer = DilatedAttention(dim=16, heads=2, segment_lengths=[4, 8], dilation_rates=[1, 2],
                             causal=True)
    x = torch.randn(1, 8, 16)
    changed = x.clone()
    changed[:, 5:] += 1.0
    y, y_changed = layer(x), layer(changed)
    torch.testing.assert_close(y[:, :5], y_changed[:, :5])
    assert not torch.allclose(y[:, 5:], y_changed[:, 5:])


def test_aliases_of_the_documents():
    layer = DilatedAttention(d_model=16, num_heads=2, dilation_rate=1, segment_size=8,
                             Distributed=False)
    assert layer.dim == 16 and layer.heads == 2
    with pytest.warns(DeprecationWarning, match="casual"):
        spelled = DilatedAttention(16, 2, 1, 8, casual=True)
    assert spelled.causal
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DilatedAttention(16, 2, 1, 8, causal=True)  # no warning for the right spelling


def test_state_dict_names_and_repr():
    layer = DilatedAttention(dim=16, heads=2, dilation_rate=2, segment_size=8)
    assert set(layer.state_dict()) == {f"{p}.{t}" for p in ("q_proj", "k_proj", "v_proj",
                                                             "out_proj")
                                       for t in ("weight", "bias")}
    text = repr(layer)
    assert "segment_lengths=[8]" in text and "dilation_rates=[2]" in text
    assert "segment_size" in DilatedAttention.__doc__


def test_lists_of_patterns_and_grouped_offsets():
    layer = DilatedAttention(dim=24, heads=3, segment_lengths=[4, 8, 16],
                             dilation_rates=[1, 2, 4], head_offsets="grouped")
    assert layer(torch.randn(2, 16, 24)).shape == (2, 16, 24)


def test_multimodal_with_a_missing_modality():
    torch.manual_seed(1)
    mm = MultiModalDilatedAttention(16, 2, 1, 8, num_modalities=3)
    a, c = torch.randn(2, 8, 16), torch.randn(2, 16, 16)
    y = mm([a, None, c])
    assert y.shape == (2, 24, 16)
    want = mm.cross_modality_attention(torch.cat([mm.modality_attentions[0](a),
                                                  mm.modality_attentions[2](c)], dim=1))
    torch.testing.assert_close(y, want)
    with pytest.raises(ValueError, match="every modality is missing"):
        mm([None, None, None])


def test_numpy_and_torch_agree_without_copies():
    q = torch.randn(1, 16, 2, 8)
    o_torch, _ = longnet.dilated_attention(q, q, q, 8, 2)
    o_numpy, _ = longnet.dilated_attention(q.numpy(), q.numpy(), q.numpy(), 8, 2)
    np.testing.assert_array_equal(o_torch.numpy(), o_numpy)


@pytest.mark.skipif(not hasattr(torch, "library") or not hasattr(torch.library, "opcheck"),
                    reason="torch.library.custom_op and opcheck need torch >= 2.4 (this is "
                           f"{torch.__version__})")
def test_custom_op_passes_opcheck():
    q, k, v = (torch.randn(1, 16, 2, 8, requires_grad=True) for _ in range(3))
    torch.library.opcheck(torch.ops.longnet.dilated_attention.default,
                          (q, k, v, [8, 16], [1, 2], True, "interleaved", None))


@pytest.mark.skipif(not (torch.cuda.is_available() and longnet.cuda_kernels_built()),
                    reason="needs a GPU and a build with the CUDA kernels")
def test_cuda_forward_and_backward_on_a_side_stream_equal_the_cpu():
    torch.manual_seed(2)
    cpu = [torch.randn(2, 64, 4, 32, requires_grad=True) for _ in range(3)]
    o_cpu, lse_cpu = longnet.dilated_attention(*cpu, [16, 64], [1, 4], causal=True)
    dout = torch.randn_like(o_cpu)
    grads_cpu = torch.autograd.grad(o_cpu, cpu, dout)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        gpu = [x.detach().cuda().requires_grad_() for x in cpu]
        o, lse = longnet.dilated_attention(*gpu, [16, 64], [1, 4], causal=True)
        grads = torch.autograd.grad(o, gpu, dout.cuda())
    stream.synchronize()
    torch.testing.assert_close(o.cpu(), o_cpu.detach(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(lse.cpu(), lse_cpu, atol=1e-4, rtol=1e-4)
    for got, want in zip(grads, grads_cpu):
        torch.testing.assert_close(got.cpu(), want, atol=1e-3, rtol=1e-3)
