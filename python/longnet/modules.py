"""torch.nn modules with the LongNet documents' constructors."""

from __future__ import annotations

import warnings
from typing import List, Optional, Sequence, Union

import torch
from torch import nn

from . import _C
from ._ops import _as_list, dilated_attention

IntOrInts = Union[int, Sequence[int]]


def _pick(name: str, value, alias_name: str, alias):
    if alias is None:
        return value
    if value is not None and value != alias:
        raise ValueError(f"{name}={value!r} and its alias {alias_name}={alias!r} disagree: "
                         f"give only {name}")
    return alias


def _communicator(distributed):
    if distributed is None or distributed is False:
        return None
    if distributed is True:
        from mpi4py import MPI

        return MPI.COMM_WORLD
    if not hasattr(distributed, "py2f") or not hasattr(distributed, "allreduce"):
        raise TypeError(f"distributed must be False, True or an mpi4py communicator, got "
                        f"{type(distributed).__name__}")
    return distributed


class DilatedAttention(nn.Module):
    """LongNet's dilated attention layer: x ``[B, N, dim]`` -> ``[B, N, dim]``.

    ``q, k, v = q_proj(x), k_proj(x), v_proj(x)`` split into ``heads`` heads, dilated
    attention over every (segment length, dilation rate) pattern merged by log-sum-exp
    (the C++/CUDA kernels, :func:`longnet.dilated_attention`), then ``out_proj``.

    Args:
        dim: model width (alias ``d_model``); a multiple of ``heads``.
        heads: number of heads (alias ``num_heads``).
        dilation_rate, segment_size: the documents' single pattern (r, w).
        dropout: dropout on the attention output before ``out_proj``, in [0, 1).
        causal: mask future tokens (the documents' misspelling ``casual`` is accepted,
            with a DeprecationWarning).
        use_xpos: xPos on q and k, anchored per pattern at its segment centres
            (``xpos_scale_base``), as the C++ layer does; CPU only.
        use_rel_pos_bias: a learned T5-style bias table ``rel_pos_bias`` [heads,
            ``rel_pos_buckets``] by the bucket of the token distance
            (``rel_pos_max_distance``), added to the scores inside the kernels; CPU only.
        distributed: False (alias ``Distributed``), or an mpi4py communicator (True:
            ``MPI.COMM_WORLD``): run under ``mpirun -np P``, each rank passing its shard of
            the tokens (``longnet.sequence_shard(tokens, P, rank)``); the result equals the
            single-process one. CPU tensors.
        segment_lengths, dilation_rates: several patterns, instead of the single one.
        head_offsets: ``"interleaved"`` (the paper) or ``"grouped"`` (torchscale).

    ``.to("cuda")`` runs the CUDA kernels when the package was built with them.
    """

    def __init__(self, dim: Optional[int] = None, heads: Optional[int] = None,
                 dilation_rate: Optional[int] = None, segment_size: Optional[int] = None,
                 dropout: float = 0.0, causal: bool = False, use_xpos: bool = False,
                 use_rel_pos_bias: bool = False, distributed=False, *,
                 segment_lengths: Optional[IntOrInts] = None,
                 dilation_rates: Optional[IntOrInts] = None, head_offsets: str = "interleaved",
                 d_model: Optional[int] = None, num_heads: Optional[int] = None,
                 casual: Optional[bool] = None, Distributed=None,
                 xpos_scale_base: float = 512.0, rel_pos_buckets: int = 32,
                 rel_pos_max_distance: int = 128) -> None:
        super().__init__()
        dim = _pick("dim", dim, "d_model", d_model)
        heads = _pick("heads", heads, "num_heads", num_heads)
        if casual is not None:
            warnings.warn("DilatedAttention(casual=...) is a misspelling kept for the documents' "
                          "examples; write causal=...", DeprecationWarning, stacklevel=2)
            causal = bool(casual) or causal
        if Distributed is not None:
            distributed = Distributed
        if dim is None or heads is None:
            raise TypeError("DilatedAttention needs dim (or d_model) and heads (or num_heads)")
        for name, value in (("dim", dim), ("heads", heads)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if dim % heads != 0:
            raise ValueError(f"dim {dim} must be divisible by heads {heads} (head_dim = dim / "
                             "heads)")
        if segment_lengths is None:
            if segment_size is None:
                raise TypeError("DilatedAttention needs segment_size (or segment_lengths=[...])")
            segment_lengths = segment_size
        elif segment_size is not None:
            raise ValueError("give segment_size or segment_lengths, not both")
        if dilation_rates is None:
            dilation_rates = 1 if dilation_rate is None else dilation_rate
        elif dilation_rate is not None:
            raise ValueError("give dilation_rate or dilation_rates, not both")
        self.segment_lengths: List[int] = _as_list("segment_size", segment_lengths)
        self.dilation_rates: List[int] = _as_list("dilation_rate", dilation_rates)
        if len(self.segment_lengths) != len(self.dilation_rates):
            raise ValueError(f"segment_lengths {self.segment_lengths} and dilation_rates "
                             f"{self.dilation_rates} must have the same length")
        for w, r in zip(self.segment_lengths, self.dilation_rates):
            if r > w:
                raise ValueError(f"dilation_rate {r} must not exceed segment_size {w}")
        if head_offsets not in ("interleaved", "grouped"):
            raise ValueError(f"head_offsets must be 'interleaved' or 'grouped', got "
                             f"{head_offsets!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.distributed = _communicator(distributed)
        if (use_xpos or use_rel_pos_bias) and self.distributed is not None:
            raise NotImplementedError("use_xpos / use_rel_pos_bias with distributed=... is not "
                                      "available from Python yet (the C++ layer has it)")
        if use_xpos and (dim // heads) % 2:
            raise ValueError(f"use_xpos rotates pairs of elements: dim / heads = {dim // heads} "
                             "must be even")
        if not xpos_scale_base > 0:
            raise ValueError(f"xpos_scale_base must be positive, got {xpos_scale_base}")
        if use_rel_pos_bias and not (rel_pos_buckets >= 4
                                     and rel_pos_max_distance > rel_pos_buckets // 2):
            raise ValueError(f"rel_pos_buckets {rel_pos_buckets} must be >= 4 and "
                             f"rel_pos_max_distance {rel_pos_max_distance} above half of them")
        self.use_xpos, self.use_rel_pos_bias = bool(use_xpos), bool(use_rel_pos_bias)
        self.xpos_scale_base = float(xpos_scale_base)
        self._sequence_parallel_ops: dict = {}
        self.dim, self.heads, self.causal = dim, heads, bool(causal)
        self.head_offsets = head_offsets
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(float(dropout))
        if self.use_rel_pos_bias:
            # T5-style table [heads, buckets] by the bucket of the REAL token distance (the
            # C++ layer's rel_pos_bias); each pattern reads it at its dilated distances.
            self.rel_pos_bias = nn.Parameter(torch.randn(heads, rel_pos_buckets) * 0.02)
            for p, (w, r) in enumerate(zip(self.segment_lengths, self.dilation_rates)):
                rows = _C.bias_rows(w, r)
                buckets = [_C.relative_position_bucket(-d * r, not self.causal, rel_pos_buckets,
                                                       rel_pos_max_distance)
                           for d in range(-(rows - 1), rows)]
                self.register_buffer(f"_buckets_{p}", torch.tensor(buckets, dtype=torch.long),
                                     persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x ``[batch, tokens, dim]`` -> ``[batch, tokens, dim]``."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch tensor, got {type(x).__name__}")
        if x.dim() != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape [batch, tokens, dim={self.dim}], got "
                             f"{list(x.shape)}")
        b, n, _ = x.shape
        shape = (b, n, self.heads, self.dim // self.heads)
        q = self.q_proj(x).reshape(shape)
        k = self.k_proj(x).reshape(shape)
        v = self.v_proj(x).reshape(shape)
        if self.use_xpos or self.use_rel_pos_bias:
            o = self._pattern_attention(q, k, v)
        elif self.distributed is None:
            o, _ = dilated_attention(q, k, v, self.segment_lengths, self.dilation_rates,
                                     causal=self.causal, head_offsets=self.head_offsets)
        else:
            from ._torch_op import SequenceParallelFunction

            o, _ = SequenceParallelFunction.apply(q.contiguous(), k.contiguous(),
                                                  v.contiguous(), self._sequence_parallel(shape))
        return self.out_proj(self.dropout(o.reshape(b, n, self.dim)))

    def _pattern_attention(self, q, k, v):
        from ._torch_op import PatternAttentionFunction, XposFunction

        patterns = len(self.segment_lengths)
        if self.use_xpos:
            qs = [XposFunction.apply(q, "query", 0, w, self.xpos_scale_base)
                  for w in self.segment_lengths]
            ks = [XposFunction.apply(k, "key", 0, w, self.xpos_scale_base)
                  for w in self.segment_lengths]
        else:
            qs, ks = [q] * patterns, [k] * patterns
        biases = ([self.rel_pos_bias[:, getattr(self, f"_buckets_{p}")]
                   for p in range(patterns)] if self.use_rel_pos_bias else [])
        config = (self.segment_lengths, self.dilation_rates, self.causal, self.head_offsets,
                  None)
        o, _ = PatternAttentionFunction.apply(v.contiguous(), config, patterns,
                                              self.use_rel_pos_bias, *qs, *ks, *biases)
        return o

    def _sequence_parallel(self, local_shape):
        # Collective: every rank computes the global length and checks its shard together,
        # so a wrong split is an error on every rank rather than a hang.
        comm = self.distributed
        b, n_local, h, d = local_shape
        tokens = comm.allreduce(n_local)
        key = (b, tokens, h, d)
        op = self._sequence_parallel_ops.get(key)
        if op is None:
            op = _C.SequenceParallel(comm.py2f(), self.segment_lengths, self.dilation_rates,
                                     self.causal, self.head_offsets, None, list(key))
            self._sequence_parallel_ops[key] = op
        begin, end = op.shard
        if comm.allreduce(int(end - begin != n_local)):
            raise ValueError(f"distributed: rank {op.rank} holds {n_local} of {tokens} tokens, "
                             f"but the balanced split gives it [{begin}, {end}): pass x[:, "
                             f"begin:end] with (begin, end) = longnet.sequence_shard({tokens}, "
                             f"{op.world_size}, rank) on every rank")
        return op

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, heads={self.heads}, segment_lengths={self.segment_lengths}, "
                f"dilation_rates={self.dilation_rates}, causal={self.causal}, "
                f"head_offsets={self.head_offsets!r}, dropout={self.dropout.p}"
                + (", use_xpos=True" if self.use_xpos else "")
                + (", use_rel_pos_bias=True" if self.use_rel_pos_bias else "")
                + (f", distributed=<{self.distributed.Get_size()} ranks>"
                   if self.distributed is not None else ""))


class MultiModalDilatedAttention(nn.Module):
    """One :class:`DilatedAttention` per modality, their outputs concatenated along the
    sequence, then a cross-modality :class:`DilatedAttention` over the concatenation.

    forward(xs) takes one ``[B, N_i, dim]`` tensor (or None, a missing modality) per
    modality and returns ``[B, sum of the present N_i, dim]``.
    """

    def __init__(self, dim: int, heads: int, dilation_rate: int, segment_size: int,
                 dropout: float = 0.0, causal: bool = False, num_modalities: int = 2,
                 **options) -> None:
        super().__init__()
        if isinstance(num_modalities, bool) or not isinstance(num_modalities, int) \
                or num_modalities <= 0:
            raise ValueError(f"num_modalities must be a positive integer, got {num_modalities!r}")

        def make() -> DilatedAttention:
            return DilatedAttention(dim, heads, dilation_rate, segment_size, dropout, causal,
                                    **options)

        self.num_modalities = num_modalities
        self.modality_attentions = nn.ModuleList(make() for _ in range(num_modalities))
        self.cross_modality_attention = make()

    def forward(self, xs: Sequence[Optional[torch.Tensor]]) -> torch.Tensor:
        if len(xs) != self.num_modalities:
            raise ValueError(f"xs must hold one tensor (or None) per modality "
                             f"({self.num_modalities}), got {len(xs)}")
        outputs = [attention(x) for attention, x in zip(self.modality_attentions, xs)
                   if x is not None]
        if not outputs:
            raise ValueError("every modality is missing (all None): give at least one")
        return self.cross_modality_attention(torch.cat(outputs, dim=1))

    def extra_repr(self) -> str:
        return f"num_modalities={self.num_modalities}"
