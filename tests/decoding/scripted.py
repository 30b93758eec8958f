"""A model with hand-written next-token probabilities, keyed by the generated prefix. It implements the decoding
interface (``tformer.decoding.interface.EncoderDecoderModel``) and nothing else, so search that reaches past the
interface fails here."""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch
from torch import Tensor

from tformer.nn.cache import KVCache
from tformer.nn.outputs import EncoderOutput

PAD, BOS, EOS, A, B = 0, 1, 2, 3, 4
VOCAB = 5
IMPOSSIBLE = -1e4  # log-probability of a token the table does not list


class ScriptedModel:
    """``table`` maps a generated prefix (tuple of ids) to {token: probability}; unlisted prefixes end.

    ``calls`` records the rows of every ``next_token_log_probs`` call (tests count decoding steps with it).
    """

    def __init__(self, table: dict[tuple[int, ...], dict[int, float]], max_len: int = 64) -> None:
        self.table = table
        self.config = SimpleNamespace(pad_id=PAD, bos_id=BOS, eos_id=EOS, max_len=max_len)
        self.calls: list[int] = []

    def encode(self, src: Tensor) -> EncoderOutput:
        return EncoderOutput(torch.zeros(src.size(0), src.size(1), 1), src.ne(PAD))  # (batch, src_len, 1)

    def new_cache(self, capacity: int = 32) -> KVCache:
        return KVCache(1, capacity)

    def next_token_log_probs(self, tokens: Tensor, cache: KVCache, memory: EncoderOutput | None = None) -> Tensor:
        """(rows, new_len) -> (rows, VOCAB). The cache stores the token history as "keys", so beam reordering and
        row selection are exercised for real; the memory must have the cache's rows."""
        if memory is None or memory.memory.size(0) != tokens.size(0):
            raise ValueError(f"memory for {tokens.size(0)} rows expected, got {memory and memory.memory.size(0)}")
        ids = tokens[:, None, :, None].float()  # (rows, 1, new_len, 1)
        keys, _ = cache.self_attn[0].update(ids, ids)
        self.calls.append(tokens.size(0))
        rows = []
        for prefix in keys[:, 0, :, 0].long().tolist():  # the whole prefix, BOS first
            probs = self.table.get(tuple(prefix[1:]), {EOS: 1.0})
            rows.append([math.log(probs[t]) if probs.get(t, 0) > 0 else IMPOSSIBLE for t in range(VOCAB)])
        return torch.tensor(rows)
