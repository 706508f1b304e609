#!/usr/bin/env python3
"""The PyTorch (CPU) baseline of `longnet train`: the same model and training step in torch ops.

What it mirrors, read from the C++ (configs/tiny.toml's defaults):
  model      LongNetDecoder (model/longnet_decoder.cpp): byte embedding; per block, pre-LN
             h += DilatedAttention(LN1(h)), h += W2 GELU(W1 LN2(h) + b1) + b2 with the exact
             (erf) GELU; final LayerNorm; logits = LN_f(h) embed^T (tied head, no bias).
  attention  DilatedAttention (model/dilated_attention_layer.cpp): q, k, v, out projections
             with biases; per pattern (w, r), xPos anchored at the centre of each token's
             w-segment (model/xpos.cpp); segments of w tokens from token 0 (the last may be
             short), rows (i mod w) mod r == off(h) of each segment, off(h) grouped
             (torchscale, h // ceil(H / r)) or interleaved (h mod r); causal in the dilated
             index; s_ij = q_i . k_j / sqrt(D) + bias[h, bucket((j - i) r)] (T5 buckets of
             the real distance, model/dilated_attention_layer.cpp); the patterns' outputs mixed
             with weights proportional to exp(lse) (kernels/dilated_attention_config.hpp).
  training   mean next-byte cross-entropy; global gradient-norm clip; AdamW (decoupled decay on
             the weight matrices only: not the embedding, biases, norms or the bias table);
             linear warm-up then cosine from lr to min_lr (model/training/trainer.cpp).
  data       windows of seq_len + 1 bytes of DIR/train.h5, by default at the very offsets
             `longnet train` draws (model/training/token_dataset.cpp, counter_hash.hpp), and
             by default the very initial values (mt19937_64 + libstdc++'s normal_distribution,
             model/parameter.cpp), so the losses can be compared step by step.
  parallel   --world W > 1: W processes (torch.multiprocessing), DistributedDataParallel over
             gloo; data.batch_size is per data-parallel group (train_config.hpp), so the
             global batch is W x --batch, and the loss is the mean over all W x B x N tokens.

The attention is torchscale's approach in plain torch ops (torch 1.13 has no SDPA on the CPU):
per pattern, gather every head's dilated rows of every segment with one index_select (a plain
view for r = 1), xPos on the gathered rows, one batched matmul + masked softmax over all
segments and heads, scatter back with one index_copy, then merge the patterns by log-sum-exp.
(index_select/index_copy measured 5-10x faster here, forward + backward, than slicing each
head group's offset and concatenating.)

    /usr/bin/python3 bench/torch_longnet.py --steps 30 --threads 2            # one process
    /usr/bin/python3 bench/torch_longnet.py --steps 30 --threads 1 --world 2  # 2-way DDP
    /usr/bin/python3 bench/torch_longnet.py --check                           # correctness

--check compares the dilated attention with a dense float64 reference written separately (the
full per-head, per-pattern masks, one softmax over their union) in float64 (forward and
gradients), and, when build/launch/longnet exists, with `longnet attend` (o, lse, dq, dk, dv)
and with the first steps of `longnet train` (losses and gradient norms).
"""

import argparse
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ---------------------------------------------------------------------------------------------
# Configuration: configs/tiny.toml's values.


def default_config():
    return {
        "seed": 1234,
        "vocab_size": 256, "dim": 128, "layers": 2, "heads": 4, "ffn_dim": 512,
        "segment_lengths": [64, 256, 1024], "dilation_rates": [1, 4, 16],
        "causal": True, "head_offsets": "grouped",
        "use_xpos": True, "xpos_scale_base": 512.0,
        "use_rel_pos_bias": True, "rel_pos_buckets": 32, "rel_pos_max_distance": 128,
        "dropout": 0.0, "layer_norm_eps": 1e-5, "init_std": 0.02,
        "seq_len": 1024, "batch_size": 4,
        "lr": 1e-3, "min_lr": 1e-4, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8,
        "weight_decay": 0.1, "grad_clip": 1.0, "warmup_steps": 50, "max_steps": 1000,
    }


def learning_rate(cfg, step):
    """model/training/trainer.cpp learning_rate(); step is 0-based."""
    if cfg["warmup_steps"] > 0 and step < cfg["warmup_steps"]:
        return cfg["lr"] * (step + 1) / cfg["warmup_steps"]
    span = max(1, cfg["max_steps"] - cfg["warmup_steps"])
    progress = min(1.0, (step - cfg["warmup_steps"]) / span)
    return cfg["min_lr"] + 0.5 * (cfg["lr"] - cfg["min_lr"]) * (1.0 + math.cos(math.pi * progress))


# ---------------------------------------------------------------------------------------------
# Exact replicas of the C++ randomness: initial values and data windows.

MASK64 = (1 << 64) - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15


def splitmix_finalize(x):
    x &= MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def hash_combine(h, value):
    return splitmix_finalize(h + GOLDEN_GAMMA + splitmix_finalize(value))


def sample_offset(seed, step, group, row, n_tokens, seq_len):
    """TokenDataset::sample_offset: where window (seed, step, group, row) starts."""
    h = splitmix_finalize(seed)
    for value in (step, group, row):
        h = hash_combine(h, value)
    return (h * (n_tokens - seq_len)) >> 64  # scale_to: floor(h n / 2^64)


class MT19937_64:
    """std::mt19937_64, vectorised with numpy."""
    N, M = 312, 156

    def __init__(self, seed):
        mt = [seed & MASK64]
        for i in range(1, self.N):
            mt.append((6364136223846793005 * (mt[-1] ^ (mt[-1] >> 62)) + i) & MASK64)
        self.mt = np.array(mt, dtype=np.uint64)

    def _twist(self):
        mt, u = self.mt, np.uint64
        upper, lower, a = u(0xFFFFFFFF80000000), u(0x7FFFFFFF), u(0xB5026F5AA96619E9)

        def mix(cur, nxt, far):
            y = (cur & upper) | (nxt & lower)
            return far ^ (y >> u(1)) ^ np.where((y & u(1)) != 0, a, u(0))

        n, m = self.N, self.M
        mt[:n - m] = mix(mt[:n - m], mt[1:n - m + 1], mt[m:n])
        mt[n - m:n - 1] = mix(mt[n - m:n - 1], mt[n - m + 1:n], mt[:m - 1])
        mt[n - 1] = mix(mt[n - 1:n], mt[0:1], mt[m - 1:m])[0]

    def next_block(self):
        """The next 312 outputs."""
        self._twist()
        u = np.uint64
        y = self.mt.copy()
        y ^= (y >> u(29)) & u(0x5555555555555555)
        y ^= (y << u(17)) & u(0x71D67FFFEDA60000)
        y ^= (y << u(37)) & u(0xFFF7EEE000000000)
        y ^= y >> u(43)
        return y


def libstdcxx_normal(seed, count, std):
    """`count` draws of std::normal_distribution<double>(0, std) from std::mt19937_64(seed)
    as libstdc++ makes them (Marsaglia's polar method, generate_canonical<double, 53>)."""
    gen = MT19937_64(seed)
    pairs_needed = (count + 1) // 2
    accepted_y, accepted_x, have = [], [], 0
    while have < pairs_needed:
        blocks = max(1, (int((pairs_needed - have) * 2 / 0.78) + 64) // MT19937_64.N + 1)
        raw = np.concatenate([gen.next_block() for _ in range(2 * blocks)])  # even length
        u = raw.astype(np.float64) / 18446744073709551616.0
        u = np.where(u >= 1.0, np.nextafter(1.0, 0.0), u)
        x = 2.0 * u[0::2] - 1.0
        y = 2.0 * u[1::2] - 1.0
        r2 = x * x + y * y
        ok = (r2 <= 1.0) & (r2 != 0.0)
        accepted_x.append(x[ok])
        accepted_y.append(y[ok])
        have += int(ok.sum())
        # The generator is continued where the block ended: a pair never straddles blocks
        # because every block holds an even number of draws.
    x = np.concatenate(accepted_x)[:pairs_needed]
    y = np.concatenate(accepted_y)[:pairs_needed]
    r2 = x * x + y * y
    log_r2 = np.array([math.log(v) for v in r2.tolist()])  # libm's log, as std::log
    mult = np.sqrt(-2.0 * log_r2 / r2)
    out = np.empty(2 * pairs_needed)
    out[0::2] = y * mult  # the first call returns y * mult, the next the saved x * mult
    out[1::2] = x * mult
    return out[:count] * std + 0.0


def initial_value(shape, std, seed, exact, generator):
    n = int(np.prod(shape))
    if exact:
        return torch.from_numpy(libstdcxx_normal(seed, n, std).reshape(shape)).float()
    return torch.empty(shape).normal_(0.0, std, generator=generator)


# ---------------------------------------------------------------------------------------------
# Dilated attention.


def head_offset(scheme, head, heads, rate):
    """kernels/dilated_attention_config.cpp head_offset()."""
    if scheme == "interleaved":
        return head % rate
    per_offset = (heads + rate - 1) // rate
    return head // per_offset


def relative_position_bucket(relative, bidirectional, buckets, max_distance):
    """model/dilated_attention_layer.cpp relative_position_bucket(); relative = key - query."""
    bucket = 0
    n = -relative
    if bidirectional:
        buckets //= 2
        if n < 0:
            bucket += buckets
        n = abs(n)
    else:
        n = max(n, 0)
    exact = buckets // 2
    if n < exact:
        return bucket + n
    scaled = math.log(n / exact) / math.log(max_distance / exact) * (buckets - exact)
    return bucket + min(exact + int(scaled), buckets - 1)


def xpos_tables(positions, segment_length, head_dim, scale_base):
    """Per token position (a numpy int array), the xPos coefficients of model/xpos.cpp in
    float64: cos, sin [..., D/2] and the query and key decays [..., D/2]."""
    half = head_dim // 2
    i = np.arange(half, dtype=np.float64)
    d = float(head_dim)
    theta = np.power(10000.0, -2.0 * i / d)
    log_zeta = np.log((2.0 * i + 0.4 * d) / (1.4 * d))
    m = positions.astype(np.int64)[..., None]
    anchor2 = (m // segment_length) * segment_length * 2 + segment_length
    relative = (2.0 * m.astype(np.float64) - anchor2.astype(np.float64)) / (2.0 * scale_base)
    angle = m.astype(np.float64) * theta
    return np.cos(angle), np.sin(angle), np.exp(relative * log_zeta), np.exp(-relative * log_zeta)


class Pattern:
    """What one (w, r) pattern needs for a fixed sequence length, computed once: which rows
    of the [B, N*H, D] view of q, k, v it selects (segment s, head h in `head_order`, dilated
    index i: token s*w + off(h) + i*r), which of those exist (a short last segment, or
    w % r != 0, leaves some out), the mask, xPos coefficients at the selected rows and the
    relative-bias bucket of every (query, key) pair of dilated indices."""

    def __init__(self, w, r, n, heads, head_dim, opts, dtype):
        self.w, self.r = w, r
        self.segments = -(-n // w)                 # S: segments start at 0, the last may be short
        self.rows = -(-w // r)                     # L = ceil(w / r): rows per segment and head
        offsets = [head_offset(opts["head_offsets"], h, heads, r) for h in range(heads)]
        # Heads by offset (stable), so heads that share rows sit next to each other.
        self.head_order = sorted(range(heads), key=lambda h: offsets[h])
        self.identity_order = self.head_order == list(range(heads))

        s_idx = np.arange(self.segments)[:, None, None]
        offs = np.array([offsets[h] for h in self.head_order])[None, :, None]
        in_segment = offs + r * np.arange(self.rows)[None, None, :]      # [1, H', L]
        positions = s_idx * w + in_segment                               # [S, H', L] token
        valid = (in_segment < w) & (positions < n)
        self.all_valid = bool(valid.all())
        rows = positions * heads + np.array(self.head_order)[None, :, None]  # row of [N*H]
        # Missing rows read row 0 (masked as keys, dropped as queries) and write to a spare
        # row N*H that is cut off.
        self.gather_index = torch.from_numpy(np.where(valid, rows, 0).reshape(-1))
        self.scatter_index = torch.from_numpy(np.where(valid, rows, n * heads).reshape(-1))
        self.n_rows = n * heads
        # r = 1 over whole segments selects every row in order: views instead of index ops.
        self.direct = r == 1 and n % w == 0

        L = self.rows
        i = torch.arange(L)
        mask = None
        if opts["causal"]:
            mask = i[None, :] > i[:, None]                               # [L, L]: key after query
        if not self.all_valid:                                           # missing keys: masked
            missing_key = torch.from_numpy(~valid)[:, :, None, :]        # [S, H', 1, L]
            mask = missing_key if mask is None else (mask | missing_key)
        self.mask = mask                                                 # -> [B, S, H', L, L]

        self.scale = 1.0 / math.sqrt(head_dim)
        self.xpos = None
        if opts["use_xpos"]:
            c, s, dq, dk = xpos_tables(np.minimum(positions, n - 1), w, head_dim,
                                       opts["xpos_scale_base"])

            def coefficients(cos, sin, factor):
                # y = x * A + swap(x) * B with swap(x) = (x1, x0) per pair:
                # A = (cos, cos), B = (-sin, sin) (times the decay and, for q, the softmax scale).
                a = np.repeat(cos, 2, axis=-1) * factor
                b = np.stack((-sin, sin), axis=-1).reshape(a.shape) * factor
                return (torch.from_numpy(a).to(dtype), torch.from_numpy(b).to(dtype))
            self.xpos = (coefficients(c * dq, s * dq, self.scale) + coefficients(c * dk, s * dk, 1.0))

        self.bias_index = None
        if opts["use_rel_pos_bias"]:
            bucket = {dist: relative_position_bucket(-dist * r, not opts["causal"],
                                                     opts["rel_pos_buckets"],
                                                     opts["rel_pos_max_distance"])
                      for dist in range(-(L - 1), L)}
            ii, jj = np.meshgrid(np.arange(L), np.arange(L), indexing="ij")
            self.bias_index = torch.from_numpy(
                np.vectorize(bucket.get)(ii - jj).astype(np.int64).reshape(-1))
            self.head_order_index = torch.tensor(self.head_order)

    def gather(self, x):
        """[B, N, H, D] -> the selected rows [B, S, H', L, D]."""
        b, _, h, d = x.shape
        if self.direct:
            return x.view(b, self.segments, self.w, h, d).transpose(2, 3)
        rows = x.reshape(b, self.n_rows, d).index_select(1, self.gather_index)
        return rows.view(b, self.segments, h, self.rows, d)

    def scatter(self, o, lse):
        """The selected rows' o [B, S, H', L, D] and lse [B, S, H', L] back to token order:
        o [B, N, H, D] (zero where this pattern selects nothing), lse [B, N, H] (-inf there)."""
        b, _, h, _, d = o.shape
        n = self.n_rows // h
        if self.direct:
            return o.transpose(2, 3).reshape(b, n, h, d), lse.transpose(2, 3).reshape(b, n, h)
        o_rows = o.new_zeros(b, self.n_rows + 1, d).index_copy(
            1, self.scatter_index, o.reshape(b, -1, d))
        lse_rows = lse.new_full((b, self.n_rows + 1), -math.inf).index_copy(
            1, self.scatter_index, lse.reshape(b, -1))
        return o_rows[:, :-1].view(b, n, h, d), lse_rows[:, :-1].view(b, n, h)

    def bias(self, table):
        """The [H', L, L] bias of the (query, key) dilated pairs from the [H, buckets] table."""
        if not self.identity_order:
            table = table.index_select(0, self.head_order_index)
        return table.index_select(1, self.bias_index).view(-1, self.rows, self.rows)


def apply_xpos(x, a, b):
    """x [B, S, H', L, D] rotated pairwise and decayed (model/xpos.cpp: y0 = (x0 cos - x1 sin)
    decay, y1 = (x1 cos + x0 sin) decay) as x * a + swap(x) * b."""
    swapped = x.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)
    return x * a + swapped * b


class DilatedAttentionCore:
    """The attention of every pattern, merged: q, k, v [B, N, H, D] -> o [B, N, H, D] and the
    merged lse [B, N, H] (natural log; -inf where no pattern selects the row)."""

    def __init__(self, n, heads, head_dim, opts, dtype=torch.float32):
        self.n, self.heads, self.head_dim = n, heads, head_dim
        self.patterns = [Pattern(w, r, n, heads, head_dim, opts, dtype)
                         for w, r in zip(opts["segment_lengths"], opts["dilation_rates"])]
        self.neg = -1e30 if dtype == torch.float32 else -1e300  # finite: no NaN on empty rows
        # A pattern with r = 1 selects every row for every head.
        self.always_covered = any(p.r == 1 for p in self.patterns)

    def __call__(self, q, k, v, bias_table=None):
        outs, lses = [], []
        for p in self.patterns:
            qs, ks, vs = p.gather(q), p.gather(k), p.gather(v)   # [B, S, H', L, D]
            if p.xpos is not None:
                qs = apply_xpos(qs, p.xpos[0], p.xpos[1])          # scale folded in
                ks = apply_xpos(ks, p.xpos[2], p.xpos[3])
            else:
                qs = qs * p.scale
            scores = torch.matmul(qs, ks.transpose(-1, -2))       # [B, S, H', L, L]
            if bias_table is not None and p.bias_index is not None:
                scores = scores + p.bias(bias_table)
            if p.mask is not None:
                scores = scores.masked_fill(p.mask, self.neg)
            lse = torch.logsumexp(scores, dim=-1)                 # [B, S, H', L]
            o = torch.matmul(torch.softmax(scores, dim=-1), vs)   # [B, S, H', L, D]
            o, lse = p.scatter(o, lse)
            outs.append(o)
            lses.append(lse)
        if len(outs) == 1:
            return outs[0], lses[0]
        # Weights exp(lse_p - lse): the max is subtracted (and detached: it cancels), rows
        # no pattern selects get weight 0 everywhere instead of NaN.
        stacked = torch.stack(lses)                               # [P, B, N, H]
        top = stacked.detach().max(dim=0).values
        if not self.always_covered:
            top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
        e = torch.exp(stacked - top)
        total = e.sum(dim=0)
        if not self.always_covered:
            total = torch.where(total > 0, total, torch.ones_like(total))
        weights = (e / total).unsqueeze(-1)
        o = outs[0] * weights[0]
        for i in range(1, len(outs)):
            o = o + outs[i] * weights[i]
        lse = top + torch.log(total)
        if not self.always_covered:
            lse = torch.where(e.sum(dim=0) > 0, lse, torch.full_like(lse, -math.inf))
        return o, lse


# ---------------------------------------------------------------------------------------------
# The model.


class LongNetDecoder(torch.nn.Module):
    def __init__(self, cfg, n, exact_init=True, dtype=torch.float32):
        super().__init__()
        self.cfg = cfg
        d, f, v = cfg["dim"], cfg["ffn_dim"], cfg["vocab_size"]
        self.heads = cfg["heads"]
        self.head_dim = d // self.heads
        std, seed = cfg["init_std"], cfg["seed"]
        gen = torch.Generator().manual_seed(seed)

        def matrix(shape, s):
            return torch.nn.Parameter(initial_value(shape, std, s, exact_init, gen).to(dtype))

        def const(shape, value):
            return torch.nn.Parameter(torch.full(shape, value, dtype=dtype))

        self.embed = matrix((v, d), seed)
        self.blocks = torch.nn.ModuleList()
        for layer in range(cfg["layers"]):
            s = seed + 1000 * (layer + 1)
            blk = torch.nn.Module()
            blk.norm1_gamma, blk.norm1_beta = const((d,), 1.0), const((d,), 0.0)
            blk.wq, blk.bq = matrix((d, d), s + 1), const((d,), 0.0)
            blk.wk, blk.bk = matrix((d, d), s + 2), const((d,), 0.0)
            blk.wv, blk.bv = matrix((d, d), s + 3), const((d,), 0.0)
            blk.wo, blk.bo = matrix((d, d), s + 4), const((d,), 0.0)
            if cfg["use_rel_pos_bias"]:
                blk.rel_pos_bias = matrix((self.heads, cfg["rel_pos_buckets"]), s + 5)
            blk.norm2_gamma, blk.norm2_beta = const((d,), 1.0), const((d,), 0.0)
            blk.w1, blk.b1 = matrix((f, d), s + 11), const((f,), 0.0)
            blk.w2, blk.b2 = matrix((d, f), s + 12), const((d,), 0.0)
            self.blocks.append(blk)
        self.final_gamma, self.final_beta = const((d,), 1.0), const((d,), 0.0)
        self.attention = DilatedAttentionCore(n, self.heads, self.head_dim, cfg, dtype)

    def decay_groups(self):
        """AdamW groups: weight decay on the weight matrices only (model/parameter.hpp)."""
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            (decay if leaf in ("wq", "wk", "wv", "wo", "w1", "w2") else no_decay).append(p)
        return decay, no_decay

    def forward(self, tokens, targets):
        cfg = self.cfg
        b, n = tokens.shape
        d, eps = cfg["dim"], cfg["layer_norm_eps"]
        h = F.embedding(tokens, self.embed)
        for blk in self.blocks:
            x = F.layer_norm(h, (d,), blk.norm1_gamma, blk.norm1_beta, eps)
            q = F.linear(x, blk.wq, blk.bq).view(b, n, self.heads, self.head_dim)
            k = F.linear(x, blk.wk, blk.bk).view(b, n, self.heads, self.head_dim)
            v = F.linear(x, blk.wv, blk.bv).view(b, n, self.heads, self.head_dim)
            o, _ = self.attention(q, k, v, getattr(blk, "rel_pos_bias", None))
            h = h + F.linear(o.reshape(b, n, d), blk.wo, blk.bo)
            x = F.layer_norm(h, (d,), blk.norm2_gamma, blk.norm2_beta, eps)
            h = h + F.linear(F.gelu(F.linear(x, blk.w1, blk.b1)), blk.w2, blk.b2)
        x = F.layer_norm(h, (d,), self.final_gamma, self.final_beta, eps)
        logits = F.linear(x, self.embed)
        return F.cross_entropy(logits.view(b * n, -1), targets.reshape(b * n))


# ---------------------------------------------------------------------------------------------
# Data.


class Windows:
    def __init__(self, data_dir, cfg, order, group, seed):
        import h5py
        with h5py.File(os.path.join(data_dir, "train.h5"), "r") as f:
            fmt = f.attrs.get("format")
            fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
            if fmt != "longnet-tokens":
                sys.exit(f"torch_longnet: {data_dir}/train.h5 is not longnet token data")
            self.tokens = f["tokens"][:]
        self.cfg, self.order, self.group = cfg, order, group
        self.gen = torch.Generator().manual_seed(seed * 1000003 + group)

    def batch(self, step):
        n, b = self.cfg["seq_len"], self.cfg["batch_size"]
        if self.order == "longnet":
            starts = [sample_offset(self.cfg["seed"], step, self.group, row, len(self.tokens), n)
                      for row in range(b)]
        else:
            starts = torch.randint(0, len(self.tokens) - n, (b,), generator=self.gen).tolist()
        window = torch.from_numpy(np.stack([self.tokens[s:s + n + 1] for s in starts])).long()
        return window[:, :-1], window[:, 1:]


# ---------------------------------------------------------------------------------------------
# Training.


def global_norm(grads):
    if hasattr(torch, "_foreach_norm"):
        norms = torch._foreach_norm(grads)
    else:
        norms = [g.norm() for g in grads]
    return float(torch.stack([n.double() for n in norms]).norm())


def worker(rank, args, cfg, port, queue):
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    world = args.world
    if world > 1:
        import torch.distributed as dist
        os.environ["MASTER_ADDR"] = "127.0.0.1"
        os.environ["MASTER_PORT"] = str(port)
        dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(cfg["seed"])
    data = Windows(args.data, cfg, args.data_order, rank, cfg["seed"])
    model = LongNetDecoder(cfg, cfg["seq_len"], exact_init=args.init == "exact")
    decay, no_decay = model.decay_groups()
    params = decay + no_decay
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg["weight_decay"]},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"],
        foreach=args.foreach)
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, bucket_cap_mb=args.bucket_mb, gradient_as_bucket_view=True)

    total = args.warmup + args.steps
    times, losses, norms = [], [], []
    for step in range(total):
        t0 = time.perf_counter()
        tokens, targets = data.batch(step)
        for g in opt.param_groups:
            g["lr"] = learning_rate(cfg, step)
        opt.zero_grad(set_to_none=False)
        loss = net(tokens, targets)  # mean over this rank's tokens; DDP averages the gradients
        loss.backward()
        loss_value = loss.detach()
        if world > 1:
            import torch.distributed as dist
            dist.all_reduce(loss_value)
            loss_value = loss_value / world
        norm = global_norm([p.grad for p in params])
        if cfg["grad_clip"] > 0 and norm > cfg["grad_clip"]:
            torch._foreach_mul_([p.grad for p in params], cfg["grad_clip"] / norm)
        opt.step()
        seconds = time.perf_counter() - t0
        loss_value = float(loss_value)
        if not math.isfinite(loss_value) or not math.isfinite(norm):
            sys.exit(f"torch_longnet: step {step + 1}: loss {loss_value}, grad norm {norm}")
        timed = step >= args.warmup
        if timed:
            times.append(seconds)
        losses.append(loss_value)
        norms.append(norm)
        if rank == 0:
            print(f"step {step + 1:>5} | loss {loss_value:.4f} | lr {learning_rate(cfg, step):.2e} "
                  f"| grad norm {norm:.3f} | {seconds:.3f} s{'' if timed else ' (warm-up)'}",
                  flush=True)
    if rank == 0 and queue is not None:
        queue.put((times, losses, norms))
    if world > 1:
        import torch.distributed as dist
        dist.barrier()
        dist.destroy_process_group()
    return times, losses, norms


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(args):
    cfg = default_config()
    cfg["seed"] = args.seed
    cfg["batch_size"] = args.batch
    cfg["seq_len"] = args.seq_len
    if args.world == 1:
        times, losses, norms = worker(0, args, cfg, None, None)
    else:
        import torch.multiprocessing as mp
        ctx = mp.get_context("spawn")
        queue = ctx.SimpleQueue()
        mp.spawn(worker, args=(args, cfg, free_port(), queue), nprocs=args.world, join=True)
        times, losses, norms = queue.get()
    if not times:
        return
    median = statistics.median(times)
    tokens_per_s = cfg["batch_size"] * cfg["seq_len"] * args.world / median
    print(f"# {len(times)} timed steps after {args.warmup} untimed; {args.world} process(es) x "
          f"{args.threads} thread(s); global batch {args.world} x {cfg['batch_size']} x "
          f"{cfg['seq_len']} tokens; torch {torch.__version__}")
    print(f"torch_longnet: median step {median:.4f} s, {tokens_per_s:.0f} tokens/s", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": cfg, "threads": args.threads, "world": args.world,
                       "init": args.init, "data_order": args.data_order,
                       "warmup_steps_untimed": args.warmup, "step_seconds": times,
                       "median_step_s": median, "tokens_per_s": tokens_per_s,
                       "losses": losses, "grad_norms": norms,
                       "torch": torch.__version__}, f, indent=1)
            f.write("\n")


# ---------------------------------------------------------------------------------------------
# Checks.


def dense_reference(q, k, v, table, opts):
    """Dense float64 dilated attention, written apart from the code above: for every head the
    full N x N mask of each pattern, scores with xPos at that pattern's anchors and the bias
    of the REAL distance, then ONE softmax over the union (with multiplicity) of all
    patterns' allowed keys. Returns o [B, N, H, D] and lse [B, N, H] (-inf: no key)."""
    b, n, heads, d = q.shape
    scale = 1.0 / math.sqrt(d)
    tok = torch.arange(n)
    qi, kj = tok[:, None], tok[None, :]
    o = torch.zeros_like(q)
    lse = torch.full((b, n, heads), -math.inf, dtype=q.dtype)
    if opts["use_rel_pos_bias"]:
        buckets = torch.tensor([[relative_position_bucket(j - i, not opts["causal"],
                                                          opts["rel_pos_buckets"],
                                                          opts["rel_pos_max_distance"])
                                 for j in range(n)] for i in range(n)])
    outs, lses = [], []
    for h in range(heads):
        scores, values = [], []
        for w, r in zip(opts["segment_lengths"], opts["dilation_rates"]):
            off = head_offset(opts["head_offsets"], h, heads, r)
            allowed = (qi // w == kj // w) & ((qi % w) % r == off) & ((kj % w) % r == off)
            if opts["causal"]:
                allowed &= kj <= qi
            qh, kh = q[:, :, h], k[:, :, h]
            if opts["use_xpos"]:
                qh, kh = xpos_reference(qh, w, opts), xpos_reference(kh, w, opts, key=True)
            s = torch.einsum("bid,bjd->bij", qh, kh) * scale
            if opts["use_rel_pos_bias"]:
                s = s + table[h][buckets]
            scores.append(torch.where(allowed, s, torch.full_like(s, -math.inf)))
            values.append(v[:, :, h])
        s = torch.cat(scores, dim=2)             # [B, N, P*N]
        vv = torch.cat(values, dim=1)            # [B, P*N, D]
        any_key = torch.isfinite(s).any(dim=2, keepdim=True)
        s_safe = torch.where(any_key, s, torch.zeros_like(s))
        l = torch.logsumexp(s_safe, dim=2, keepdim=True)
        p = torch.exp(s_safe - l) * any_key
        outs.append(torch.einsum("bij,bjd->bid", p, vv))
        lses.append(torch.where(any_key, l, torch.full_like(l, -math.inf))[..., 0])
    o = torch.stack(outs, dim=2)
    lse = torch.stack(lses, dim=2)
    return o, lse


def xpos_reference(x, w, opts, key=False):
    """model/xpos.hpp's formula token by token, in float64: x [B, N, D]."""
    b, n, d = x.shape
    out = []
    for m in range(n):
        a = (m // w) * w + w / 2.0
        cols = []
        for i in range(d // 2):
            theta = 10000.0 ** (-2.0 * i / d)
            zeta = (2.0 * i + 0.4 * d) / (1.4 * d)
            decay = zeta ** ((-(m - a) if key else (m - a)) / opts["xpos_scale_base"])
            c, s = math.cos(m * theta), math.sin(m * theta)
            x0, x1 = x[:, m, 2 * i], x[:, m, 2 * i + 1]
            cols += [(x0 * c - x1 * s) * decay, (x1 * c + x0 * s) * decay]
        out.append(torch.stack(cols, dim=-1))
    return torch.stack(out, dim=1)


def max_rel(a, b):
    a, b = a.detach(), b.detach()
    finite = torch.isfinite(b)
    if not torch.equal(finite, torch.isfinite(a)):
        return math.inf
    scale = max(1.0, float(b[finite].abs().max())) if finite.any() else 1.0
    return float((a[finite] - b[finite]).abs().max()) / scale if finite.any() else 0.0


def check_dense(failures):
    print("# dilated attention vs the dense float64 reference (max |diff| / max(1, max |ref|))")
    base = dict(default_config(), use_xpos=True, use_rel_pos_bias=True, rel_pos_buckets=8,
                rel_pos_max_distance=20)
    cases = [
        ("N=64 w=8,16,32 r=1,2,4 causal grouped xpos bias", 64, 4, 8,
         dict(segment_lengths=[8, 16, 32], dilation_rates=[1, 2, 4])),
        ("N=64 w=8,16,32 r=1,2,4 causal grouped plain", 64, 4, 8,
         dict(segment_lengths=[8, 16, 32], dilation_rates=[1, 2, 4], use_xpos=False,
              use_rel_pos_bias=False)),
        ("N=64 w=8,16,32 r=1,2,4 non-causal interleaved xpos bias", 64, 4, 8,
         dict(segment_lengths=[8, 16, 32], dilation_rates=[1, 2, 4], causal=False,
              head_offsets="interleaved")),
        ("N=56 w=8,16,32,128 r=1,2,4,8 causal grouped (short last segments, w > N)", 56, 4, 8,
         dict(segment_lengths=[8, 16, 32, 128], dilation_rates=[1, 2, 4, 8])),
        ("N=50 w=6,20 r=4,3 H=3 causal interleaved (w % r != 0)", 50, 3, 8,
         dict(segment_lengths=[6, 20], dilation_rates=[4, 3], head_offsets="interleaved")),
        ("N=40 w=8,16 r=4,8 H=2 non-causal grouped (uncovered rows)", 40, 2, 4,
         dict(segment_lengths=[8, 16], dilation_rates=[4, 8], causal=False)),
    ]
    gen = torch.Generator().manual_seed(7)
    for name, n, heads, d, over in cases:
        opts = dict(base, **over)
        q, k, v = (torch.randn(2, n, heads, d, generator=gen, dtype=torch.float64,
                               requires_grad=True) for _ in range(3))
        table = (torch.randn(heads, opts["rel_pos_buckets"], generator=gen, dtype=torch.float64)
                 .requires_grad_(True))
        g = torch.randn(2, n, heads, d, generator=gen, dtype=torch.float64)
        core = DilatedAttentionCore(n, heads, d, opts, torch.float64)
        o, lse = core(q, k, v, table if opts["use_rel_pos_bias"] else None)
        o_ref, lse_ref = dense_reference(q, k, v, table, opts)
        inputs = [q, k, v] + ([table] if opts["use_rel_pos_bias"] else [])
        grads = torch.autograd.grad((o * g).sum(), inputs)
        grads_ref = torch.autograd.grad((o_ref * g).sum(), inputs)
        errs = {"o": max_rel(o, o_ref), "lse": max_rel(lse, lse_ref)}
        for label, a, r in zip(["dq", "dk", "dv", "dbias"], grads, grads_ref):
            errs[label] = max_rel(a, r)
        worst = max(errs.values())
        ok = worst < 1e-10
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: " +
              " ".join(f"{key} {val:.1e}" for key, val in errs.items()))
        if not ok:
            failures.append(name)


def longnet_binary():
    path = os.path.join(ROOT, "build", "launch", "longnet")
    return path if os.access(path, os.X_OK) else None


def check_attend(failures):
    binary = longnet_binary()
    if binary is None:
        print("# longnet attend: build/launch/longnet is missing, skipped")
        return
    import h5py
    print("# dilated attention vs `longnet attend` (float32 C++ kernels; rel. L2 error)")
    cases = [
        ("B=2 N=2048 H=4 D=32 w=64,256,1024 r=1,4,16 causal grouped", 2048,
         dict(segment_lengths=[64, 256, 1024], dilation_rates=[1, 4, 16], causal=True,
              head_offsets="grouped")),
        ("B=2 N=1000 H=4 D=32 w=64,256,1024 r=1,4,16 non-causal interleaved", 1000,
         dict(segment_lengths=[64, 256, 1024], dilation_rates=[1, 4, 16], causal=False,
              head_offsets="interleaved")),
    ]
    gen = torch.Generator().manual_seed(11)
    with tempfile.TemporaryDirectory() as tmp:
        for name, n, over in cases:
            opts = dict(default_config(), use_xpos=False, use_rel_pos_bias=False, **over)
            q, k, v, g = (torch.randn(2, n, 4, 32, generator=gen) for _ in range(4))
            src, dst = os.path.join(tmp, "in.h5"), os.path.join(tmp, "out.h5")
            with h5py.File(src, "w") as f:
                for key, t in (("q", q), ("k", k), ("v", v), ("do", g)):
                    f[key] = t.numpy()
                f.attrs["segment_lengths"] = np.array(opts["segment_lengths"], dtype=np.int64)
                f.attrs["dilation_rates"] = np.array(opts["dilation_rates"], dtype=np.int64)
                f.attrs["causal"] = np.int64(1 if opts["causal"] else 0)
                f.attrs["head_offsets"] = opts["head_offsets"]
            subprocess.run([binary, "attend", "--in", src, "--out", dst, "--quiet",
                            "--threads", "1"], check=True)
            with h5py.File(dst, "r") as f:
                theirs = {key: torch.from_numpy(f[key][:]).double()
                          for key in ("o", "lse", "dq", "dk", "dv")}
            qd, kd, vd = (t.double().requires_grad_(True) for t in (q, k, v))
            core = DilatedAttentionCore(n, 4, 32, opts, torch.float64)
            o, lse = core(qd, kd, vd)
            dq, dk, dv = torch.autograd.grad((o * g.double()).sum(), (qd, kd, vd))
            ours = {"o": o, "lse": lse, "dq": dq, "dk": dk, "dv": dv}
            errs = {key: float((ours[key].detach() - theirs[key]).norm() / theirs[key].norm())
                    for key in ours}
            ok = max(errs.values()) < 1e-5
            print(f"  {'ok  ' if ok else 'FAIL'} {name}: " +
                  " ".join(f"{key} {val:.1e}" for key, val in errs.items()))
            if not ok:
                failures.append(name)


def check_init(failures):
    """The exact-init replica against values the C++ generator is known to give."""
    gen = MT19937_64(5489)  # std::mt19937_64's default seed; its 10000th output is fixed
    out = np.concatenate([gen.next_block() for _ in range(33)])
    ok = int(out[9999]) == 9981545732273789042
    print(f"  {'ok  ' if ok else 'FAIL'} mt19937_64: the 10000th draw of the default seed")
    if not ok:
        failures.append("mt19937_64")


def check_train(failures, data_dir, steps=3):
    """The first steps of `longnet train` against this model's (same initial values, same
    windows): the loss and the gradient norm of each step."""
    binary = longnet_binary()
    if binary is None or not os.path.exists(os.path.join(data_dir, "train.h5")):
        print("# longnet train: the binary or the data is missing, skipped")
        return
    print(f"# the first {steps} training steps vs `longnet train` (same init and windows)")
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "log.jsonl")
        subprocess.run([binary, "train", "--set", f"data.dir={data_dir}",
                        "--set", f"checkpoint.dir={tmp}/ckpt", "--set", "eval.every=0",
                        "--set", "checkpoint.every=0", "--stop-at", str(steps),
                        "--log-json", log], check=True, stdout=subprocess.DEVNULL,
                       env=dict(os.environ, OMP_NUM_THREADS="2"))
        theirs = [json.loads(line) for line in open(log) if '"loss"' in line]
    args = argparse.Namespace(threads=2, world=1, data=data_dir, data_order="longnet",
                              init="exact", warmup=0, steps=steps, foreach=True, bucket_mb=25)
    _, losses, norms = worker(0, args, default_config(), None, None)
    for i, rec in enumerate(theirs[:steps]):
        dl = abs(losses[i] - rec["loss"])
        dn = abs(norms[i] - rec["grad_norm"]) / rec["grad_norm"]
        ok = dl < 2e-4 and dn < 2e-3
        print(f"  {'ok  ' if ok else 'FAIL'} step {rec['step']}: loss {losses[i]:.6f} vs "
              f"{rec['loss']:.6f}, grad norm {norms[i]:.5g} vs {rec['grad_norm']:.5g}")
        if not ok:
            failures.append(f"train step {rec['step']}")


def run_checks(args):
    torch.set_num_threads(args.threads)
    failures = []
    check_init(failures)
    check_dense(failures)
    check_attend(failures)
    check_train(failures, args.data)
    print("torch_longnet check: " + ("all passed" if not failures else
                                     f"{len(failures)} FAILED: {failures}"))
    return 0 if not failures else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="data/go", help="token data dir (train.h5)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per process")
    parser.add_argument("--world", type=int, default=1, help="data-parallel processes (DDP, gloo)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--batch", type=int, default=4, help="sequences per step per process")
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--init", choices=["exact", "torch"], default="exact",
                        help="exact: longnet's initial values; torch: torch's normal_")
    parser.add_argument("--data-order", choices=["longnet", "random"], default="longnet",
                        help="longnet: the windows `longnet train` draws; random: torch RNG")
    parser.add_argument("--no-foreach", dest="foreach", action="store_false",
                        help="AdamW without the multi-tensor (foreach) implementation")
    parser.add_argument("--bucket-mb", type=float, default=25.0, help="DDP bucket size")
    parser.add_argument("--json", help="write the run's summary here")
    parser.add_argument("--check", action="store_true", help="run the correctness checks")
    args = parser.parse_args()
    if not os.path.exists(args.data) and os.path.exists(os.path.join(ROOT, args.data)):
        args.data = os.path.join(ROOT, args.data)  # relative to the repository, not the cwd
    if args.check:
        sys.exit(run_checks(args))
    if args.world < 1 or args.threads < 1 or args.steps < 0 or args.warmup < 0:
        sys.exit("torch_longnet: --world and --threads must be >= 1, --steps/--warmup >= 0")
    train(args)


if __name__ == "__main__":
    main()
