"""longnet: LongNet dilated attention (Ding et al. 2023) on C++ and CUDA kernels.

NumPy alone is enough for :func:`dilated_attention`; the ``torch.nn`` modules
(:class:`DilatedAttention`, :class:`MultiModalDilatedAttention`) import torch on first use.

    >>> import torch
    >>> from longnet import DilatedAttention
    >>> attention = DilatedAttention(dim=512, heads=8, dilation_rate=2, segment_size=16)
    >>> attention(torch.randn(4, 32, 512)).shape
    torch.Size([4, 32, 512])
"""

from __future__ import annotations

from typing import Any

from . import _C
from ._ops import dilated_attention
from .decoder import LongNetDecoder

__version__: str = _C.__version__

__all__ = [
    "DilatedAttention",
    "LongNetDecoder",
    "MultiModalDilatedAttention",
    "__version__",
    "cuda_kernels_built",
    "dilated_attention",
    "sequence_shard",
]


def cuda_kernels_built() -> bool:
    """Whether this build of the package holds the CUDA kernels."""
    return bool(_C.cuda_kernels_built())


def sequence_shard(tokens: int, world: int, rank: int) -> tuple:
    """The tokens [begin, end) that `rank` of `world` holds under ``distributed=``: the
    balanced split (the first ``tokens % world`` ranks hold one more)."""
    return tuple(_C.sequence_shard(int(tokens), int(world), int(rank)))


def __getattr__(name: str) -> Any:
    # The modules need torch; import it only when they are asked for, so that NumPy-only
    # users never load it.
    if name in ("DilatedAttention", "MultiModalDilatedAttention"):
        from . import modules

        return getattr(modules, name)
    raise AttributeError(f"module 'longnet' has no attribute {name!r}")
