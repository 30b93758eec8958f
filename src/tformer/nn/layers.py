"""Encoder and decoder layers: attention and feed-forward sub-layers, each wrapped in Add & Norm.

Post-norm (the paper): x = LayerNorm(x + Dropout(Sublayer(x))).
Pre-norm (``norm_first=True``): x = x + Dropout(Sublayer(LayerNorm(x))).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from tformer.nn.attention import MultiHeadAttention
from tformer.nn.cache import AttentionCache
from tformer.nn.dropout import Dropout
from tformer.nn.feedforward import FeedForward
from tformer.nn.outputs import AttentionOutput, LayerOutput


class AddNorm(nn.Module):
    """Residual connection around a sub-layer plus layer normalisation, pre- or post-norm."""

    def __init__(self, d_model: int, dropout: float, norm_first: bool, eps: float = 1e-5) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model, eps=eps)
        self.dropout = Dropout(dropout)
        self.norm_first = norm_first

    def forward(self, x: Tensor, sublayer: Callable[[Tensor], Tensor]) -> Tensor:
        if self.norm_first:
            return x + self._dropout(sublayer(self.norm(x)))
        return self.norm(x + self._dropout(sublayer(x)))

    def _dropout(self, x: Tensor) -> Tensor:
        # Not even called in eval mode: decoding runs this once per sub-layer per generated token.
        return self.dropout(x) if self.training else x


class EncoderLayer(nn.Module):
    """Self-attention -> Add & Norm -> feed-forward -> Add & Norm."""

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        activation_dropout: float = 0.0,
        activation: str = "relu",
        norm_first: bool = False,
        norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads, attention_dropout)
        self.self_attn_norm = AddNorm(d_model, dropout, norm_first, norm_eps)
        self.ffn = FeedForward(d_model, d_ff, activation_dropout, activation)
        self.ffn_norm = AddNorm(d_model, dropout, norm_first, norm_eps)

    def forward(self, x: Tensor, src_mask: Tensor | None = None, need_weights: bool = False) -> LayerOutput:
        """x: (batch, src_len, d_model); src_mask: (batch, src_len), True = real token."""
        attn: list[AttentionOutput] = []

        def self_attention(h: Tensor) -> Tensor:
            attn.append(self.self_attn(h, key_padding_mask=src_mask, need_weights=need_weights))
            return attn[0].output

        x = self.self_attn_norm(x, self_attention)
        x = self.ffn_norm(x, self.ffn)
        return LayerOutput(x, self_weights=attn[0].weights)


class DecoderLayer(nn.Module):
    """Masked self-attention, encoder-decoder attention and feed-forward, each followed by Add & Norm."""

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        activation_dropout: float = 0.0,
        activation: str = "relu",
        norm_first: bool = False,
        norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads, attention_dropout)
        self.self_attn_norm = AddNorm(d_model, dropout, norm_first, norm_eps)
        self.cross_attn = MultiHeadAttention(d_model, num_heads, attention_dropout)
        self.cross_attn_norm = AddNorm(d_model, dropout, norm_first, norm_eps)
        self.ffn = FeedForward(d_model, d_ff, activation_dropout, activation)
        self.ffn_norm = AddNorm(d_model, dropout, norm_first, norm_eps)

    def forward(
        self,
        x: Tensor,
        memory: Tensor | None,
        memory_mask: Tensor | None = None,
        self_cache: AttentionCache | None = None,
        cross_cache: AttentionCache | None = None,
        need_weights: bool = False,
    ) -> LayerOutput:
        """
        Args:
            x: (batch, tgt_len, d_model) target positions (only the new ones when decoding with a cache).
            memory: (batch, src_len, d_model) encoder output.
            memory_mask: (batch, src_len), True = real source token.
        """
        outs: dict[str, AttentionOutput] = {}

        def self_attention(h: Tensor) -> Tensor:
            outs["self"] = self.self_attn(h, causal=True, cache=self_cache, need_weights=need_weights)
            return outs["self"].output

        def cross_attention(h: Tensor) -> Tensor:
            outs["cross"] = self.cross_attn(
                h, memory, key_padding_mask=memory_mask, cache=cross_cache, need_weights=need_weights
            )
            return outs["cross"].output

        x = self.self_attn_norm(x, self_attention)
        x = self.cross_attn_norm(x, cross_attention)
        x = self.ffn_norm(x, self.ffn)
        return LayerOutput(x, self_weights=outs["self"].weights, cross_weights=outs["cross"].weights)
