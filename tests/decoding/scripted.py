"""A stand-in for Seq2SeqTransformer whose next-token probabilities are written by hand, keyed by the prefix."""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch

from tformer.nn.cache import KVCache
from tformer.nn.outputs import DecoderOutput, EncoderOutput

PAD, BOS, EOS, A, B = 0, 1, 2, 3, 4
VOCAB = 5


class ScriptedModel:
    """``table`` maps a generated prefix (tuple of ids) to {token: probability}; unlisted prefixes end."""

    def __init__(self, table: dict[tuple[int, ...], dict[int, float]]) -> None:
        self.table = table
        self.config = SimpleNamespace(pad_id=PAD, bos_id=BOS, eos_id=EOS, max_len=64, num_decoder_layers=1)
        self.output = SimpleNamespace(log_probs=self._log_probs)

    def encode(self, src):
        return EncoderOutput(torch.zeros(src.size(0), src.size(1), 1), src.ne(PAD))

    def new_cache(self, capacity=32):
        return KVCache(1, capacity)

    def decode(self, tgt, encoded, cache, need_weights=False):
        # the cache stores the token history as "keys", so beam reordering is exercised for real
        ids = tgt[:, :, None, None].float().transpose(1, 2)  # (batch, 1, new_len, 1)
        keys, _ = cache.self_attn[0].update(ids, ids)
        return DecoderOutput(hidden=keys[:, 0, :, 0][:, None, :])  # (batch, 1, len): the whole prefix, BOS first

    def _log_probs(self, prefix_rows):
        rows = []
        for prefix in prefix_rows.long().tolist():
            probs = self.table.get(tuple(prefix[1:]), {EOS: 1.0})
            rows.append([math.log(probs[t]) if probs.get(t, 0) > 0 else -1e4 for t in range(VOCAB)])
        return torch.tensor(rows)
