"""Stacks of N encoder or decoder layers (with a final LayerNorm when the layers are pre-norm).

The decoder stack also owns the dispatch to the native (C++) decoding step: a cached one-position step goes there
when ``tformer.nn.native.applies`` gives no reason not to, with the same result. The encoder stack likewise hands
an unpadded batch to the C++ encoder when ``tformer.nn.native.encoder_state`` allows it.
"""

from __future__ import annotations

from torch import Tensor, nn

from tformer.nn import native
from tformer.nn.cache import KVCache
from tformer.nn.layers import DecoderLayer, EncoderLayer
from tformer.nn.masks import without_trivial_mask
from tformer.nn.outputs import DecoderOutput


class Encoder(nn.Module):
    def __init__(self, layers: list[EncoderLayer], final_norm: nn.Module | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.final_norm = final_norm if final_norm is not None else nn.Identity()

    def forward(
        self, x: Tensor, src_mask: Tensor | None = None, need_weights: bool = False
    ) -> tuple[Tensor, list[Tensor]]:
        """
        Args:
            x: (batch, src_len, d_model) embedded source.
            src_mask: (batch, src_len), True = real token; None when nothing is padding.
            need_weights: also return each layer's self-attention weights.
        Returns:
            hidden (batch, src_len, d_model) and per layer weights (batch, heads, src_len, src_len), or [].
        """
        weights = []
        src_mask = without_trivial_mask(src_mask)
        state = native.encoder_state(self.layers, x, src_mask, need_weights)
        if not isinstance(state, str):  # the same result, computed in C++ (tformer.nn.native)
            return self.final_norm(native.encoder_layers(state, x)), weights
        for layer in self.layers:
            out = layer(x, src_mask, need_weights)
            x = out.hidden
            if need_weights:
                weights.append(out.self_weights)
        return self.final_norm(x), weights


class Decoder(nn.Module):
    def __init__(self, layers: list[DecoderLayer], final_norm: nn.Module | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.final_norm = final_norm if final_norm is not None else nn.Identity()

    def forward(
        self,
        x: Tensor,
        memory: Tensor | None,
        memory_mask: Tensor | None = None,
        cache: KVCache | None = None,
        need_weights: bool = False,
    ) -> DecoderOutput:
        """
        Args:
            x: (batch, tgt_len, d_model) embedded target positions (only the new ones with a filled cache).
            memory: (batch, src_len, d_model) encoder output; may be None once the cache holds its keys/values.
            memory_mask: (batch, src_len), True = real source token.
            cache: keys/values of earlier positions, updated in place.
            need_weights: also return each layer's self- and cross-attention weights.
        Returns:
            DecoderOutput with hidden (batch, tgt_len, d_model) and, when asked for, per-layer weights.
        """
        memory_mask = without_trivial_mask(memory_mask)
        why_not_native = native.applies(self.layers, x, cache, memory_mask, need_weights)
        if why_not_native == native.EMPTY_CACHE and memory is not None:  # a run's first step can be native too
            assert cache is not None
            native.fill_caches(self.layers, memory, cache)
            why_not_native = native.applies(self.layers, x, cache, memory_mask, need_weights)
        if not why_not_native:  # the same result, computed in C++ (tformer.nn.native)
            assert cache is not None
            return DecoderOutput(hidden=self.final_norm(native.decoder_step(self.layers, x, memory_mask, cache)))
        result = DecoderOutput(hidden=x)
        for i, layer in enumerate(self.layers):
            self_cache = cache.self_attn[i] if cache is not None else None
            cross_cache = cache.cross_attn[i] if cache is not None else None
            out = layer(x, memory, memory_mask, self_cache, cross_cache, need_weights)
            x = out.hidden
            if need_weights:
                result.self_weights.append(out.self_weights)
                result.cross_weights.append(out.cross_weights)
        result.hidden = self.final_norm(x)
        return result
