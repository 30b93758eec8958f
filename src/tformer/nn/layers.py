"""Encoder and decoder layers: attention and feed-forward sub-layers, each wrapped in Add & Norm.

Post-norm (the paper): x = LayerNorm(x + Dropout(Sublayer(x))).
Pre-norm (``norm_first=True``): x = x + Dropout(Sublayer(LayerNorm(x))).

Each layer's ``forward`` reads like the paper's figure: one named block per sub-layer, each returning its output
(and, for attention, its weights when asked for).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from tformer.nn.attention import MultiHeadAttention
from tformer.nn.cache import AttentionCache
from tformer.nn.dropout import Dropout
from tformer.nn.feedforward import FeedForward
from tformer.nn.outputs import LayerOutput


class AddNorm(nn.Module):
    """Residual connection around a sub-layer plus layer normalisation, pre- or post-norm.

    ``forward(x, sublayer)`` applies both halves around a sub-layer that returns a tensor; a block whose sub-layer
    returns more (attention weights) calls the halves itself: ``sublayer_input(x)``, then ``add(x, output)``.
    """

    def __init__(self, d_model: int, dropout: float, norm_first: bool, eps: float = 1e-5) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model, eps=eps)
        self.dropout = Dropout(dropout)
        self.norm_first = norm_first

    def forward(self, x: Tensor, sublayer: Callable[[Tensor], Tensor]) -> Tensor:
        return self.add(x, sublayer(self.sublayer_input(x)))

    def sublayer_input(self, x: Tensor) -> Tensor:
        """What the sub-layer reads: LayerNorm(x) with pre-norm, x itself with post-norm."""
        return self.norm(x) if self.norm_first else x

    def add(self, x: Tensor, sublayer_output: Tensor) -> Tensor:
        """The residual sum x + Dropout(sublayer_output), normalised with post-norm."""
        x = x + self.dropout(sublayer_output)
        return x if self.norm_first else self.norm(x)


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
        """
        Args:
            x: (batch, src_len, d_model).
            src_mask: (batch, src_len), True = real token.
            need_weights: also return the self-attention weights (batch, heads, src_len, src_len).
        Returns:
            LayerOutput with hidden (batch, src_len, d_model).
        """
        x, self_weights = self.self_attention_block(x, src_mask, need_weights)
        x = self.feed_forward_block(x)
        return LayerOutput(x, self_weights=self_weights)

    def self_attention_block(
        self, x: Tensor, src_mask: Tensor | None, need_weights: bool
    ) -> tuple[Tensor, Tensor | None]:
        """Multi-head self-attention over the source, with Add & Norm: (hidden, weights or None)."""
        attended = self.self_attn(self.self_attn_norm.sublayer_input(x), key_padding_mask=src_mask,
                                  need_weights=need_weights)
        return self.self_attn_norm.add(x, attended.output), attended.weights

    def feed_forward_block(self, x: Tensor) -> Tensor:
        """The position-wise feed-forward network, with Add & Norm."""
        return self.ffn_norm(x, self.ffn)


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
            memory: (batch, src_len, d_model) encoder output; may be None once ``cross_cache`` holds its keys/values.
            memory_mask: (batch, src_len), True = real source token.
            self_cache, cross_cache: this layer's key/value caches, updated in place.
            need_weights: also return the attention weights.
        Returns:
            LayerOutput with hidden (batch, tgt_len, d_model), self_weights (batch, heads, tgt_len, cached + tgt_len)
            and cross_weights (batch, heads, tgt_len, src_len) when asked for.
        """
        x, self_weights = self.self_attention_block(x, self_cache, need_weights)
        x, cross_weights = self.cross_attention_block(x, memory, memory_mask, cross_cache, need_weights)
        x = self.feed_forward_block(x)
        return LayerOutput(x, self_weights=self_weights, cross_weights=cross_weights)

    def self_attention_block(
        self, x: Tensor, cache: AttentionCache | None, need_weights: bool
    ) -> tuple[Tensor, Tensor | None]:
        """Masked (causal) multi-head self-attention over the target so far, with Add & Norm."""
        attended = self.self_attn(self.self_attn_norm.sublayer_input(x), causal=True, cache=cache,
                                  need_weights=need_weights)
        return self.self_attn_norm.add(x, attended.output), attended.weights

    def cross_attention_block(
        self,
        x: Tensor,
        memory: Tensor | None,
        memory_mask: Tensor | None,
        cache: AttentionCache | None,
        need_weights: bool,
    ) -> tuple[Tensor, Tensor | None]:
        """Encoder-decoder attention: target queries over the encoder's output (memory), with Add & Norm."""
        attended = self.cross_attn(self.cross_attn_norm.sublayer_input(x), memory, key_padding_mask=memory_mask,
                                   cache=cache, need_weights=need_weights)
        return self.cross_attn_norm.add(x, attended.output), attended.weights

    def feed_forward_block(self, x: Tensor) -> Tensor:
        """The position-wise feed-forward network, with Add & Norm."""
        return self.ffn_norm(x, self.ffn)
