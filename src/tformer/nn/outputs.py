"""Output dataclasses. Attention weights travel here, never on modules: one model serves many requests."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class AttentionOutput:
    output: Tensor  # (batch, tgt_len, d_model)
    weights: Tensor | None = None  # (batch, heads, tgt_len, src_len) when requested


@dataclass
class LayerOutput:
    hidden: Tensor  # (batch, len, d_model)
    self_weights: Tensor | None = None  # (batch, heads, len, len)
    cross_weights: Tensor | None = None  # (batch, heads, tgt_len, src_len)


@dataclass
class EncoderOutput:
    memory: Tensor  # (batch, src_len, d_model)
    src_mask: Tensor  # (batch, src_len), True = real token
    self_weights: list[Tensor] = field(default_factory=list)  # per layer (batch, heads, src_len, src_len)

    def select(self, index: Tensor) -> EncoderOutput:
        """The rows named by ``index`` (batch',), e.g. the sentences still being decoded."""
        return EncoderOutput(self.memory.index_select(0, index), self.src_mask.index_select(0, index),
                             [w.index_select(0, index) for w in self.self_weights])


@dataclass
class DecoderOutput:
    hidden: Tensor  # (batch, tgt_len, d_model)
    self_weights: list[Tensor] = field(default_factory=list)  # per layer (batch, heads, tgt_len, tgt_len)
    cross_weights: list[Tensor] = field(default_factory=list)  # per layer (batch, heads, tgt_len, src_len)
