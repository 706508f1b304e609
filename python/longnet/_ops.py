"""The dilated-attention op for NumPy arrays and torch tensors (differentiable)."""

from __future__ import annotations

import sys
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from . import _C

IntOrInts = Union[int, Sequence[int]]
_HEAD_OFFSETS = ("interleaved", "grouped")


def _as_list(name: str, value: IntOrInts) -> list:
    values = [value] if isinstance(value, (int, np.integer)) else list(value)
    if not values:
        raise ValueError(f"{name} is empty: give at least one pattern")
    for item in values:
        if isinstance(item, bool) or not isinstance(item, (int, np.integer)):
            raise TypeError(f"{name} must hold integers, got {item!r}")
        if item <= 0:
            raise ValueError(f"{name} must be positive, got {item} in {values}")
    return [int(v) for v in values]


def _normalise(segment_lengths: IntOrInts, dilation_rates: IntOrInts, head_offsets: str,
               scale: Optional[float]) -> tuple:
    w = _as_list("segment_lengths", segment_lengths)
    r = _as_list("dilation_rates", dilation_rates)
    if len(w) != len(r):
        raise ValueError(f"segment_lengths {w} and dilation_rates {r} must have one entry per "
                         "pattern (the same length)")
    if head_offsets not in _HEAD_OFFSETS:
        raise ValueError(f"head_offsets must be one of {_HEAD_OFFSETS}, got {head_offsets!r}")
    if scale is not None:
        scale = float(scale)
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be positive and finite, got {scale}")
    return w, r, head_offsets, scale


def _is_torch(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def dilated_attention(q: Any, k: Any, v: Any, segment_lengths: IntOrInts,
                      dilation_rates: IntOrInts, *, causal: bool = False,
                      head_offsets: str = "interleaved",
                      scale: Optional[float] = None) -> Tuple[Any, Any]:
    """LongNet dilated attention over every pattern (w, r), merged by log-sum-exp.

    Args:
        q, k, v: ``[batch, tokens, heads, head_dim]`` float32, contiguous, all NumPy arrays
            or all torch tensors on one device (CPU, or CUDA when the CUDA kernels are built).
        segment_lengths: w per pattern (an int for one pattern).
        dilation_rates: r per pattern, ``1 <= r <= w``.
        causal: mask keys after the query.
        head_offsets: ``"interleaved"`` (the paper: head h starts at h mod r) or
            ``"grouped"`` (torchscale).
        scale: softmax scale; ``1/sqrt(head_dim)`` when None.

    Returns:
        ``(o, lse)``: o ``[B, N, H, D]`` and the natural-log softmax denominators lse
        ``[B, N, H]`` (``-inf`` for rows no pattern selects). With torch tensors, o is
        differentiable with respect to q, k and v (the exact C++ backward).

    Raises:
        ValueError / TypeError naming the argument for a wrong rank, shape, dtype, layout,
        device or configuration.
    """
    w, r, head_offsets, scale = _normalise(segment_lengths, dilation_rates, head_offsets, scale)
    if _is_torch(q):
        from ._torch_op import torch_dilated_attention

        return torch_dilated_attention(q, k, v, w, r, bool(causal), head_offsets, scale)
    for name, array in (("q", q), ("k", k), ("v", v)):
        if not isinstance(array, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array or a torch tensor (like q), got "
                            f"{type(array).__name__}")
    if q.ndim != 4:
        raise ValueError(f"q must have rank 4 [batch, tokens, heads, head_dim], got shape "
                         f"{list(q.shape)}")
    out = np.empty(q.shape, dtype=q.dtype)
    lse = np.empty(q.shape[:3], dtype=q.dtype)
    _C.forward(q, k, v, out, lse, w, r, bool(causal), head_offsets, scale)
    return out, lse


def dilated_attention_backward(q: Any, k: Any, v: Any, out: Any, lse: Any, grad_out: Any,
                               segment_lengths: IntOrInts, dilation_rates: IntOrInts, *,
                               causal: bool = False, head_offsets: str = "interleaved",
                               scale: Optional[float] = None) -> Tuple[Any, Any, Any]:
    """The exact gradient ``(dq, dk, dv)`` of :func:`dilated_attention` for NumPy arrays."""
    w, r, head_offsets, scale = _normalise(segment_lengths, dilation_rates, head_offsets, scale)
    dq, dk, dv = (np.empty(q.shape, dtype=q.dtype) for _ in range(3))
    _C.backward(q, k, v, out, lse, grad_out, dq, dk, dv, w, r, bool(causal), head_offsets, scale)
    return dq, dk, dv
