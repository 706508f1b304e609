"""A deliberately naive dilated attention in float64 (NumPy or torch), straight from the
definition in kernels/dilated_attention_config.hpp: for pattern (w, r) and head h, query i
may attend key j when they share a segment, both sit on the head's offset and (causal)
j <= i; one softmax over the union, with multiplicity, of every pattern's keys."""

import numpy as np


def head_offset(scheme, h, heads, r):
    if scheme == "interleaved":
        return h % r
    return h // -(-heads // r)  # grouped: floor(h / ceil(H / r))


def allowed(n, heads, w, r, causal, scheme):
    """mask [H, N, N] of one pattern."""
    i = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    masks = []
    for h in range(heads):
        off = head_offset(scheme, h, heads, r)
        m = (i // w == j // w) & ((i % w) % r == off) & ((j % w) % r == off)
        if causal:
            m &= j <= i
        masks.append(m)
    return np.stack(masks)


def reference(q, k, v, segment_lengths, dilation_rates, causal=False, scheme="interleaved",
              scale=None, xp=np):
    """o [B, N, H, D], lse [B, N, H] (works for NumPy arrays and, with xp=torch, tensors)."""
    b, n, heads, d = q.shape
    scale = 1.0 / np.sqrt(d) if scale is None else scale
    s = xp.einsum("bihd,bjhd->bhij", q, k) * scale  # [B, H, N, N]
    logits, values = [], []
    for w, r in zip(segment_lengths, dilation_rates):
        mask = allowed(n, heads, w, r, causal, scheme)
        if xp is not np:
            mask = xp.from_numpy(mask)
        logits.append(xp.where(mask, s, xp.full_like(s, -np.inf) if xp is not np else -np.inf))
    stacked = xp.stack(logits)  # [P, B, H, N, N]
    if xp is np:
        top = np.max(stacked, axis=(0, 4), keepdims=True)
        top = np.where(np.isfinite(top), top, 0)
        weights = np.exp(stacked - top)
        denominator = weights.sum(axis=(0, 4), keepdims=True)
        lse = (np.log(denominator) + top)[0, ..., 0]  # [B, H, N]
        probabilities = np.where(denominator > 0, weights / np.where(denominator > 0,
                                                                      denominator, 1), 0)
        o = np.einsum("pbhij,bjhd->bihd", probabilities, v)
        return o, lse.transpose(0, 2, 1)
    lse = xp.logsumexp(stacked.permute(1, 2, 3, 0, 4).reshape(b, heads, n, -1), dim=-1)
    probabilities = xp.exp(stacked - lse[None, ..., None])
    probabilities = xp.nan_to_num(probabilities, nan=0.0)
    o = xp.einsum("pbhij,bjhd->bihd", probabilities, v)
    return o, lse.permute(0, 2, 1)
