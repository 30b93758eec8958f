"""Turning a recipe's corpora into token-id examples and padded batches."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch import Tensor

from tformer.data.augment import mixed_number_pairs, number_pairs, substitute_places
from tformer.data.corpus import ParallelCorpus, multi30k, tatoeba
from tformer.data.names import substitute_names, substitute_wordlike_names
from tformer.evaluation.names import UNSEEN_COPIED_PLACES, UNSEEN_NAMES
from tformer.training.recipe import DataConfig

# Made-up names and towns never equal the evaluation's unseen ones (tformer.evaluation.names).
EVALUATION_WORDS = frozenset(UNSEEN_NAMES) | frozenset(UNSEEN_COPIED_PLACES)


@dataclass
class Batch:
    src: Tensor  # (batch, src_len) ids + EOS, padded
    tgt_in: Tensor  # (batch, tgt_len) BOS + ids, padded
    tgt_out: Tensor  # (batch, tgt_len) ids + EOS, padded

    def num_target_tokens(self, pad_id: int) -> int:
        """Target positions that count in the loss: every token and EOS, no padding."""
        return int(self.tgt_out.ne(pad_id).sum())


def training_corpus(cfg: DataConfig, seed: int) -> ParallelCorpus:
    """Multi30k train (repeated ``multi30k_upsample`` times), a seeded sample of Tatoeba train,
    ``name_substitutions`` Tatoeba pairs whose shared name is replaced by a made-up one, ``place_substitutions``
    pairs with another place, ``number_pairs`` template pairs with numbers, ``wordlike_name_substitutions`` pairs
    with a name that begins like a German word and ``mixed_number_pairs`` pairs from the second number templates
    (in this order: a recipe without the last two gets the corpus it always got)."""
    m30k = multi30k("train", cfg.root or None)
    src, tgt = m30k.src * cfg.multi30k_upsample, m30k.tgt * cfg.multi30k_upsample
    tat = None
    if cfg.tatoeba_max_pairs or cfg.name_substitutions or cfg.place_substitutions or cfg.wordlike_name_substitutions:
        tat = tatoeba("train", cfg.root or None)
        ids = tatoeba_sample(len(tat), cfg.tatoeba_max_pairs, seed)
        new_src, new_tgt = substitute_names(tat.src, tat.tgt, cfg.substituted_names, cfg.name_substitutions, seed,
                                            cfg.name_vowel_share, EVALUATION_WORDS)
        src += [tat.src[i] for i in ids] + new_src
        tgt += [tat.tgt[i] for i in ids] + new_tgt
        new_src, new_tgt = substitute_places(tat.src, tat.tgt, cfg.place_substitutions, seed,
                                             max(cfg.name_vowel_share, 0.3), EVALUATION_WORDS)
        src, tgt = src + new_src, tgt + new_tgt
    new_src, new_tgt = number_pairs(cfg.number_pairs, seed)
    src, tgt = src + new_src, tgt + new_tgt
    if tat is not None and cfg.wordlike_name_substitutions:
        new_src, new_tgt = substitute_wordlike_names(tat.src, tat.tgt, cfg.substituted_names,
                                                     cfg.wordlike_name_substitutions, seed + 1, EVALUATION_WORDS)
        src, tgt = src + new_src, tgt + new_tgt
    new_src, new_tgt = mixed_number_pairs(cfg.mixed_number_pairs, seed)
    return ParallelCorpus(src + new_src, tgt + new_tgt, "train")


def tatoeba_sample(available: int, wanted: int, seed: int) -> list[int]:
    """Sorted ids of a seeded sample of ``wanted`` Tatoeba pairs: 0 = none, -1 (or more than there are) = all."""
    if wanted == 0:
        return []
    if 0 < wanted < available:
        return sorted(random.Random(seed).sample(range(available), wanted))
    return list(range(available))


def encode_pairs(
    src_ids: list[list[int]], tgt_ids: list[list[int]], max_tokens: int
) -> list[tuple[list[int], list[int]]]:
    """Keep pairs whose both sides are non-empty and at most ``max_tokens`` subwords."""
    return [(s, t) for s, t in zip(src_ids, tgt_ids) if 0 < len(s) <= max_tokens and 0 < len(t) <= max_tokens]


def collate(pairs: list[tuple[list[int], list[int]]], pad_id: int, bos_id: int, eos_id: int) -> Batch:
    n = len(pairs)
    src_len = max(len(s) for s, _ in pairs) + 1
    tgt_len = max(len(t) for _, t in pairs) + 1
    src = torch.full((n, src_len), pad_id, dtype=torch.long)
    tgt_in = torch.full((n, tgt_len), pad_id, dtype=torch.long)
    tgt_out = torch.full((n, tgt_len), pad_id, dtype=torch.long)
    for i, (s, t) in enumerate(pairs):
        src[i, : len(s) + 1] = torch.tensor(s + [eos_id])
        tgt_in[i, : len(t) + 1] = torch.tensor([bos_id] + t)
        tgt_out[i, : len(t) + 1] = torch.tensor(t + [eos_id])
    return Batch(src, tgt_in, tgt_out)

