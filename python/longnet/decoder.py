"""The LongNet decoder language model of `longnet train`, loaded from its checkpoints
(NumPy; torch is not needed)."""

from __future__ import annotations

import os
from typing import Optional, Tuple, Union

import numpy as np

from . import _C

Tokens = Union[bytes, bytearray, str, np.ndarray, list]


def _as_tokens(name: str, tokens: Tokens, vocab_size: int) -> np.ndarray:
    if isinstance(tokens, str):
        tokens = tokens.encode("utf-8")
    if isinstance(tokens, (bytes, bytearray)):
        tokens = np.frombuffer(bytes(tokens), dtype=np.uint8)
    array = np.asarray(tokens)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} must be [batch, tokens] (or one sequence) and non-empty, got "
                         f"shape {list(array.shape)}")
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must hold integer token ids, got dtype {array.dtype}")
    if array.min() < 0 or array.max() >= vocab_size:
        raise ValueError(f"{name} holds ids outside [0, {vocab_size})")
    return np.ascontiguousarray(array, dtype=np.int32)


class LongNetDecoder:
    """A decoder loaded with :meth:`from_checkpoint` (CPU, float32)."""

    def __init__(self, decoder: "_C.Decoder", path: str) -> None:
        self._decoder = decoder
        self.path = path

    @classmethod
    def from_checkpoint(cls, path: Union[str, os.PathLike]) -> "LongNetDecoder":
        """Loads ``ckpt_<step>.h5`` written by ``longnet train`` (its config is inside).
        A damaged or mismatched file is a ValueError naming it."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no checkpoint at {path}")
        return cls(_C.Decoder(path), path)

    @property
    def vocab_size(self) -> int:
        return int(self._decoder.vocab_size)

    @property
    def step(self) -> int:
        """The optimizer steps the checkpoint had completed."""
        return int(self._decoder.step)

    @property
    def config_toml(self) -> str:
        """The training configuration the checkpoint was written with."""
        return str(self._decoder.config_toml)

    def forward(self, tokens: Tokens,
                targets: Optional[Tokens] = None) -> Tuple[np.ndarray, Optional[float]]:
        """logits ``[B, T, vocab]`` for tokens ``[B, T]`` (or one sequence, or bytes), and
        the mean cross-entropy (nats per token) against ``targets`` when given."""
        tokens = _as_tokens("tokens", tokens, self.vocab_size)
        if targets is None:
            target_array = np.zeros_like(tokens)
        else:
            target_array = _as_tokens("targets", targets, self.vocab_size)
            if target_array.shape != tokens.shape:
                raise ValueError(f"targets has shape {list(target_array.shape)}, tokens "
                                 f"{list(tokens.shape)}: they must match")
        logits = np.empty(tokens.shape + (self.vocab_size,), dtype=np.float32)
        loss_sum = self._decoder.forward(tokens, target_array, logits)
        return logits, (None if targets is None else loss_sum / tokens.size)

    __call__ = forward

    def generate(self, prompt: Tokens, max_new_tokens: int, temperature: float = 0.0,
                 seed: Optional[int] = None) -> bytes:
        """Continues ``prompt`` (bytes) by ``max_new_tokens`` bytes: greedy when
        ``temperature`` is 0, else sampled from softmax(logits / temperature)."""
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        sequence = list(_as_tokens("prompt", prompt, self.vocab_size)[0])
        rng = np.random.default_rng(seed)
        for _ in range(max_new_tokens):
            logits, _ = self.forward(np.asarray(sequence, dtype=np.int32))
            last = logits[0, -1].astype(np.float64)
            if temperature == 0:
                sequence.append(int(np.argmax(last)))
            else:
                p = np.exp((last - last.max()) / temperature)
                sequence.append(int(rng.choice(len(p), p=p / p.sum())))
        return bytes(int(t) for t in sequence)

    def __repr__(self) -> str:
        return f"LongNetDecoder(path={self.path!r}, step={self.step}, vocab_size={self.vocab_size})"
