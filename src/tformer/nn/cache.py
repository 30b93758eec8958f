"""The key/value cache for incremental decoding: an explicit object passed in and handed back.

Self-attention keys/values grow by one position per decoding step into a preallocated buffer; cross-attention
keys/values are computed once per source and then only read. ``reorder(beam_index)`` is the one hook beam
search needs.
"""

from __future__ import annotations

import torch
from torch import Tensor


class AttentionCache:
    """Keys and values of one attention block, shape (batch, heads, len, head_dim).

    ``static=True`` (cross-attention): ``update`` stores the keys/values once; later calls read them.
    ``static=False`` (self-attention): ``update`` appends new positions to a buffer that doubles when full.
    """

    def __init__(self, static: bool, capacity: int = 32) -> None:
        self.static = static
        self.capacity = capacity
        self._keys: Tensor | None = None
        self._values: Tensor | None = None
        self._spare: tuple[Tensor, Tensor] | None = None  # the previous buffers, reused by select
        self.length = 0

    @property
    def ready(self) -> bool:
        """True when a static cache already holds its keys/values."""
        return self.static and self._keys is not None

    @property
    def keys(self) -> Tensor:
        assert self._keys is not None, "cache is empty"
        return self._keys[:, :, : self.length]

    @property
    def values(self) -> Tensor:
        assert self._values is not None, "cache is empty"
        return self._values[:, :, : self.length]

    def update(self, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """Store new keys/values (batch, heads, new_len, head_dim); return everything cached so far."""
        if self.static:
            self._keys, self._values, self.length = keys, values, keys.size(2)
            return keys, values
        new_len = self.length + keys.size(2)
        key_buffer, value_buffer = self._room_for(new_len, like=keys)
        key_buffer[:, :, self.length : new_len] = keys
        value_buffer[:, :, self.length : new_len] = values
        self.advance(keys.size(2))
        return self.keys, self.values

    def reserve(self, new_positions: int = 1) -> tuple[Tensor, Tensor]:
        """Make room for ``new_positions`` more positions of a growing cache that already holds some; return the
        whole (batch, heads, capacity, head_dim) buffers. For code that writes into them itself (the native
        decoding step, tformer.nn.native), which then calls ``advance``."""
        assert not self.static and self._keys is not None, "cache is empty or static"
        return self._room_for(self.length + new_positions, like=self._keys)

    def advance(self, new_positions: int = 1) -> None:
        """Count ``new_positions`` written into the buffers returned by ``reserve``."""
        self.length += new_positions

    def _room_for(self, new_len: int, like: Tensor) -> tuple[Tensor, Tensor]:
        """The buffers, grown (doubling, at least ``capacity``) if they cannot hold ``new_len`` positions."""
        if self._keys is None or new_len > self._keys.size(2):
            self._grow(like, max(new_len, self.capacity, 2 * (self._keys.size(2) if self._keys is not None else 0)))
        assert self._keys is not None and self._values is not None
        return self._keys, self._values

    def _grow(self, like: Tensor, capacity: int) -> None:
        self._spare = None  # the wrong capacity from now on
        batch, heads, _, head_dim = like.shape
        keys = like.new_empty(batch, heads, capacity, head_dim)
        values = like.new_empty(batch, heads, capacity, head_dim)
        if self._keys is not None and self._values is not None:
            keys[:, :, : self.length] = self.keys
            values[:, :, : self.length] = self.values
        self._keys, self._values = keys, values

    def select(self, index: Tensor) -> None:
        """Keep the batch rows named by ``index`` (batch',), in that order.

        A growing cache copies only its filled positions, into a second buffer kept from the previous call (beam
        search calls this every step; copying the whole preallocated buffer cost up to three times as much). Views
        returned by earlier calls are therefore not valid after this one.
        """
        if self._keys is None or self._values is None:
            return
        if self.static:
            self._keys = self._keys.index_select(0, index)
            self._values = self._values.index_select(0, index)
            return
        batch, heads, capacity, head_dim = self._keys.shape
        shape = (index.numel(), heads, capacity, head_dim)
        spare = self._spare if self._spare is not None and self._spare[0].shape == shape else None
        keys, values = spare if spare is not None else (self._keys.new_empty(shape), self._values.new_empty(shape))
        torch.index_select(self.keys, 0, index, out=keys[:, :, : self.length])
        torch.index_select(self.values, 0, index, out=values[:, :, : self.length])
        self._spare = (self._keys, self._values) if batch == index.numel() else None
        self._keys, self._values = keys, values


class KVCache:
    """Per decoder layer, a growing self-attention cache and a static cross-attention cache."""

    def __init__(self, num_layers: int, capacity: int = 32) -> None:
        self.self_attn = [AttentionCache(static=False, capacity=capacity) for _ in range(num_layers)]
        self.cross_attn = [AttentionCache(static=True) for _ in range(num_layers)]

    @property
    def length(self) -> int:
        """Number of target positions already decoded (and cached)."""
        return self.self_attn[0].length if self.self_attn else 0

    def reorder(self, beam_index: Tensor) -> None:
        """Beam search hook: row i of the new cache is row ``beam_index[i]`` of the old.

        Only the growing self-attention caches move; the cross-attention keys/values depend on the source alone,
        and beam search keeps each source's hypotheses in the same rows.
        """
        for cache in self.self_attn:
            cache.select(beam_index)

    def select(self, batch_index: Tensor) -> None:
        """Keep a subset of rows in every cache (e.g. drop finished sentences)."""
        for cache in self.self_attn + self.cross_attn:
            cache.select(batch_index)
