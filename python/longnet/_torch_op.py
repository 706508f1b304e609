"""The op for torch: an autograd.Function over the C++ forward and backward, and, on
torch >= 2.4, a torch.library custom op (so torch.compile traces through it)."""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch

from . import _C


def _stream(t: torch.Tensor) -> int:
    # The C++ op orders its work after the caller's current stream.
    return torch.cuda.current_stream(t.device).cuda_stream if t.is_cuda else 0


def _check(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    for name, t in (("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor like q, got {type(t).__name__}")
    if q.dim() != 4:
        raise ValueError(f"q must have rank 4 [batch, tokens, heads, head_dim], got shape "
                         f"{list(q.shape)}")


def _forward(q, k, v, w, r, causal, head_offsets, scale):
    # DLPack refuses tensors that require grad: hand over detached views (no copy).
    q, k, v = q.detach(), k.detach(), v.detach()
    out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    lse = torch.empty(q.shape[:3], dtype=q.dtype, device=q.device)
    _C.forward(q, k, v, out, lse, w, r, causal, head_offsets, scale, _stream(q))
    return out, lse


def _backward(q, k, v, out, lse, grad_out, w, r, causal, head_offsets, scale):
    grad_out = grad_out.detach().contiguous()
    dq, dk, dv = (torch.empty(q.shape, dtype=q.dtype, device=q.device) for _ in range(3))
    _C.backward(q.detach(), k.detach(), v.detach(), out.detach(), lse.detach(), grad_out, dq, dk,
                dv, w, r, causal, head_offsets, scale, _stream(q))
    return dq, dk, dv


class DilatedAttentionFunction(torch.autograd.Function):
    """o, lse = dilated attention; backward is the C++ op's exact gradient (lse is not
    differentiable)."""

    @staticmethod
    def forward(ctx, q, k, v, w, r, causal, head_offsets, scale):  # type: ignore[override]
        out, lse = _forward(q, k, v, w, r, causal, head_offsets, scale)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.config = (w, r, causal, head_offsets, scale)
        ctx.mark_non_differentiable(lse)
        return out, lse

    @staticmethod
    def backward(ctx, grad_out, grad_lse):  # type: ignore[override]
        q, k, v, out, lse = ctx.saved_tensors
        dq, dk, dv = _backward(q, k, v, out, lse, grad_out, *ctx.config)
        return dq, dk, dv, None, None, None, None, None


def torch_dilated_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, w: List[int],
                            r: List[int], causal: bool, head_offsets: str,
                            scale: Optional[float]) -> Tuple[torch.Tensor, torch.Tensor]:
    _check(q, k, v)
    if _custom_op is not None:
        return _custom_op(q, k, v, w, r, causal, head_offsets, scale)
    return DilatedAttentionFunction.apply(q, k, v, w, r, causal, head_offsets, scale)


def _torch_version() -> Tuple[int, int]:
    major, minor = torch.__version__.split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


_custom_op = None
if _torch_version() >= (2, 4):  # pragma: no cover - the Debian torch here is 1.13
    # torch.library.custom_op: a real operator with a fake (meta) implementation for
    # torch.compile and an autograd formula calling the C++ backward.
    @torch.library.custom_op("longnet::dilated_attention", mutates_args=())
    def _op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, w: List[int], r: List[int],
            causal: bool, head_offsets: str,
            scale: Optional[float]) -> Tuple[torch.Tensor, torch.Tensor]:
        return _forward(q, k, v, w, r, causal, head_offsets, scale)

    @_op.register_fake
    def _(q, k, v, w, r, causal, head_offsets, scale):
        return torch.empty_like(q), q.new_empty(q.shape[:3])

    @torch.library.custom_op("longnet::dilated_attention_backward", mutates_args=())
    def _op_backward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor,
                     lse: torch.Tensor, grad_out: torch.Tensor, w: List[int], r: List[int],
                     causal: bool, head_offsets: str,
                     scale: Optional[float]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return _backward(q, k, v, out, lse, grad_out, w, r, causal, head_offsets, scale)

    @_op_backward.register_fake
    def _(q, k, v, out, lse, grad_out, w, r, causal, head_offsets, scale):
        return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)

    def _setup_context(ctx, inputs, output):
        q, k, v, w, r, causal, head_offsets, scale = inputs
        out, lse = output
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.config = (w, r, causal, head_offsets, scale)
        ctx.mark_non_differentiable(lse)  # as in DilatedAttentionFunction: no silent zero

    def _autograd(ctx, grad_out, grad_lse):
        q, k, v, out, lse = ctx.saved_tensors
        dq, dk, dv = _op_backward(q, k, v, out, lse, grad_out, *ctx.config)
        return dq, dk, dv, None, None, None, None, None

    _op.register_autograd(_autograd, setup_context=_setup_context)
    _custom_op = _op


class SequenceParallelFunction(torch.autograd.Function):
    """The sequence-parallel op (longnet._C.SequenceParallel) with the exact backward;
    forward and backward are collective over the op's communicator."""

    @staticmethod
    def forward(ctx, q, k, v, op):  # type: ignore[override]
        q, k, v = q.detach(), k.detach(), v.detach()
        out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
        lse = torch.empty(q.shape[:3], dtype=q.dtype, device=q.device)
        op.forward(q, k, v, out, lse)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.op = op
        ctx.mark_non_differentiable(lse)
        return out, lse

    @staticmethod
    def backward(ctx, grad_out, grad_lse):  # type: ignore[override]
        q, k, v, out, lse = ctx.saved_tensors
        dq, dk, dv = (torch.empty(q.shape, dtype=q.dtype, device=q.device) for _ in range(3))
        ctx.op.backward(q, k, v, out, lse, grad_out.detach().contiguous(), dq, dk, dv)
        return dq, dk, dv, None


class XposFunction(torch.autograd.Function):
    """xPos of one pattern (model/xpos.hpp, the C++ layer's own code), CPU float32."""

    @staticmethod
    def forward(ctx, x, role, first_token, segment_length, scale_base):  # type: ignore[override]
        x = x.detach().contiguous()
        out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
        _C.xpos(x, out, role, first_token, segment_length, scale_base)
        ctx.span = (role, first_token, segment_length, scale_base)
        return out

    @staticmethod
    def backward(ctx, dy):  # type: ignore[override]
        dx = torch.zeros(dy.shape, dtype=dy.dtype, device=dy.device)
        _C.xpos_transpose_add(dy.detach().contiguous(), dx, *ctx.span)
        return dx, None, None, None, None


class PatternAttentionFunction(torch.autograd.Function):
    """Dilated attention with one q and k per pattern and an optional relative-position
    bias [H, 2L - 1] per pattern (the C++ layer's attention step), exact backward."""

    @staticmethod
    def forward(ctx, v, config, patterns, with_bias, *tensors):  # type: ignore[override]
        w, r, causal, head_offsets, scale = config
        qs = [t.detach().contiguous() for t in tensors[:patterns]]
        ks = [t.detach().contiguous() for t in tensors[patterns:2 * patterns]]
        biases = [t.detach().contiguous() for t in tensors[2 * patterns:]] if with_bias else []
        v = v.detach()
        out = torch.empty(v.shape, dtype=v.dtype, device=v.device)
        lse = torch.empty(v.shape[:3], dtype=v.dtype, device=v.device)
        _C.pattern_forward(qs, ks, v, biases, out, lse, w, r, causal, head_offsets, scale)
        ctx.save_for_backward(v, out, lse, *qs, *ks, *biases)
        ctx.config, ctx.patterns, ctx.with_bias = config, patterns, with_bias
        ctx.mark_non_differentiable(lse)
        return out, lse

    @staticmethod
    def backward(ctx, grad_out, grad_lse):  # type: ignore[override]
        v, out, lse, *rest = ctx.saved_tensors
        p = ctx.patterns
        qs, ks, biases = rest[:p], rest[p:2 * p], rest[2 * p:]
        dqs = [torch.zeros_like(t) for t in qs]
        dks = [torch.zeros_like(t) for t in ks]
        dbiases = [torch.zeros_like(t) for t in biases]
        dv = torch.empty_like(v)
        _C.pattern_backward(list(qs), list(ks), v, list(biases), out, lse,
                            grad_out.detach().contiguous(), dqs, dks, dv, dbiases, *ctx.config)
        return (dv, None, None, None, *dqs, *dks, *dbiases)
