"""The one interface between search (greedy, beam, traces) and a model: what search may ask, and nothing more.

Search asks a model for the next-token log-probabilities given the tokens so far, a key/value cache and (for an
encoder-decoder model) the encoder's output, and asks the cache and the encoder output to keep or reorder rows.
``Seq2SeqTransformer`` implements it; so do the decoder-only model and the scripted model of the tests.

A decoder-only model implements ``DecodingModel`` with ``memory=None``: it has no encoder, so it ignores
``memory`` (and search passes None); its first call holds the whole prompt and fills the cache, later calls hold
one new token per row. An encoder-decoder model also implements ``EncoderDecoderModel``: search encodes the
source once and passes the result as ``memory`` at every step.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class DecodingConfig(Protocol):
    """The special token ids and the length limit search reads from a model's configuration."""

    pad_id: int
    bos_id: int
    eos_id: int
    max_len: int  # the longest token sequence the model takes (positions), BOS included


@runtime_checkable
class SearchCache(Protocol):
    """An incremental-decoding state (``tformer.nn.KVCache``) that search keeps in step with its rows."""

    @property
    def length(self) -> int:
        """Positions already decoded (and cached)."""
        ...

    def reorder(self, beam_index: Tensor) -> None:
        """Beam search's hook: row i of the new state is row ``beam_index[i]`` (rows,) of the old."""
        ...

    def select(self, batch_index: Tensor) -> None:
        """Keep the rows named by ``batch_index`` (rows',), in that order (finished rows leave the batch)."""
        ...


@runtime_checkable
class SearchMemory(Protocol):
    """The encoder's output as search holds it (``tformer.nn.outputs.EncoderOutput``): rows can be selected,
    which also repeats them (beam search gives every source ``beam`` consecutive rows)."""

    def select(self, index: Tensor) -> SearchMemory:
        """The rows named by ``index`` (rows',), in that order."""
        ...


@runtime_checkable
class DecodingModel(Protocol):
    """A model that search can drive, one step at a time."""

    @property
    def config(self) -> DecodingConfig: ...

    def new_cache(self, capacity: int = 32) -> SearchCache:
        """An empty cache with room for ``capacity`` positions (it grows when needed)."""
        ...

    def next_token_log_probs(self, tokens: Tensor, cache: SearchCache, memory: SearchMemory | None = None) -> Tensor:
        """Log-probabilities of the token after the last position.

        Args:
            tokens: (rows, new_len) the positions not yet in ``cache`` (the first call: from BOS, or the prompt).
            cache: from ``new_cache``; updated in place with the new positions.
            memory: the encoder's output for these rows; None for a decoder-only model.
        Returns:
            (rows, vocab) float32 log-probabilities for the position after ``tokens``' last.
        """
        ...


@runtime_checkable
class EncoderDecoderModel(DecodingModel, Protocol):
    """A ``DecodingModel`` with an encoder: search encodes each source batch once."""

    def encode(self, src: Tensor) -> SearchMemory:
        """src (rows, src_len) padded source ids -> the memory passed to ``next_token_log_probs``."""
        ...
