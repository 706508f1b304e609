"""DilatedAttention with xPos and the relative position bias against a float64 reference
written from their definitions (model/xpos.hpp, kernels/dilated_attention.hpp)."""

import math

import pytest
import torch

import longnet
from longnet import DilatedAttention
from reference import allowed


def xpos_reference(x, role, w, scale_base=512.0):
    """x [B, T, H, D] float64; pairs (2i, 2i+1) rotated by t theta_i and scaled by
    zeta_i^(+-(t - a) / s), a = the centre of t's w-segment."""
    b, t, h, d = x.shape
    out = torch.empty_like(x)
    sign = 1.0 if role == "query" else -1.0
    for token in range(t):
        anchor = (token // w) * w + w / 2
        for i in range(d // 2):
            theta = 10000.0 ** (-2.0 * i / d)
            zeta = (2.0 * i + 0.4 * d) / (1.4 * d)
            decay = zeta ** (sign * (token - anchor) / scale_base)
            c, s = math.cos(token * theta), math.sin(token * theta)
            x0, x1 = x[:, token, :, 2 * i], x[:, token, :, 2 * i + 1]
            out[:, token, :, 2 * i] = (x0 * c - x1 * s) * decay
            out[:, token, :, 2 * i + 1] = (x1 * c + x0 * s) * decay
    return out


def layer_reference(layer, x):
    """The layer's forward in float64: one softmax over every pattern's allowed keys."""
    b, n, dim = x.shape
    h, d = layer.heads, dim // layer.heads

    def project(linear):
        return torch.nn.functional.linear(x, linear.weight.double(), linear.bias.double())

    q, k, v = (project(lin).reshape(b, n, h, d)
               for lin in (layer.q_proj, layer.k_proj, layer.v_proj))
    logits = []
    for w, r in zip(layer.segment_lengths, layer.dilation_rates):
        qp = xpos_reference(q, "query", w) if layer.use_xpos else q
        kp = xpos_reference(k, "key", w) if layer.use_xpos else k
        s = torch.einsum("bihd,bjhd->bhij", qp, kp) / math.sqrt(d)
        if layer.use_rel_pos_bias:
            table = layer.rel_pos_bias.double()
            buckets = torch.tensor([[longnet._C.relative_position_bucket(
                j - i, not layer.causal, table.shape[1], 128) for j in range(n)]
                for i in range(n)])
            s = s + table[:, buckets][None]
        mask = torch.from_numpy(allowed(n, h, w, r, layer.causal, layer.head_offsets))
        logits.append(torch.where(mask, s, torch.full_like(s, -math.inf)))
    stacked = torch.stack(logits)
    lse = torch.logsumexp(stacked.permute(1, 2, 3, 0, 4).reshape(b, h, n, -1), dim=-1)
    probabilities = torch.nan_to_num(torch.exp(stacked - lse[None, ..., None]), nan=0.0)
    o = torch.einsum("pbhij,bjhd->bihd", probabilities, v).reshape(b, n, dim)
    return torch.nn.functional.linear(o, layer.out_proj.weight.double(),
                                      layer.out_proj.bias.double())


@pytest.mark.parametrize("xpos, bias, causal", [(True, False, True), (False, True, False),
                                                 (True, True, True)])
def test_layer_equals_the_reference_with_gradients(xpos, bias, causal):
    torch.manual_seed(3)
    layer = DilatedAttention(dim=16, heads=2, segment_lengths=[4, 12], dilation_rates=[1, 2],
                             causal=causal, use_xpos=xpos, use_rel_pos_bias=bias,
                             head_offsets="grouped")
    if bias:  # a visible bias, not the small initial one
        with torch.no_grad():
            layer.rel_pos_bias.normal_()
    x = torch.randn(2, 12, 16, requires_grad=True)
    y = layer(x)
    x64 = x.detach().double().requires_grad_()
    want = layer_reference(layer, x64)
    torch.testing.assert_close(y.double(), want, atol=2e-5, rtol=1e-4)
    dy = torch.randn_like(y)
    dx, = torch.autograd.grad(y, x, dy, retain_graph=True)
    dx_want, = torch.autograd.grad(want, x64, dy.double(), retain_graph=True)
    torch.testing.assert_close(dx.double(), dx_want, atol=5e-5, rtol=1e-4)
    if bias:
        db, = torch.autograd.grad(y, layer.rel_pos_bias, dy)
        db_want, = torch.autograd.grad(want, layer.rel_pos_bias, dy.double())
        assert db.abs().sum() > 0
        torch.testing.assert_close(db.double(), db_want.double(), atol=5e-5, rtol=1e-4)
    assert ("use_xpos=True" in repr(layer)) == xpos
