"""Source batching for search, in one place: sort by length and chunk (``length_sorted_chunks``, which the BERT
pipelines share from ``tformer.data.batching``), pad, append EOS, search (greedy or beam), and put the results
back in input order. ``Translator``, traces, the trainer's validation translations and the CTranslate2 translator
all batch this way, so they treat empty and long inputs alike."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from tformer.data.batching import length_sorted_chunks
from tformer.decoding.beam import beam_search
from tformer.decoding.greedy import greedy_search
from tformer.decoding.interface import EncoderDecoderModel
from tformer.decoding.search import Hypothesis


def pad_sources(ids: Sequence[Sequence[int]], pad_id: int, eos_id: int) -> Tensor:
    """(batch, src_len) tensor of each row's ids + EOS, right-padded with ``pad_id``; src_len = longest + 1."""
    length = max(len(s) for s in ids) + 1
    src = torch.full((len(ids), length), pad_id, dtype=torch.long)
    for i, s in enumerate(ids):
        src[i, : len(s) + 1] = torch.tensor([*s, eos_id])
    return src


def search_batch(model: EncoderDecoderModel, src: Tensor, beam: int = 1, nbest: int = 1,
                 length_penalty: float = 1.0, max_len_a: float = 1.5, max_len_b: int = 10
                 ) -> list[list[Hypothesis]]:
    """The one greedy/beam switch: greedy search for ``beam=1`` (one hypothesis per row), beam search otherwise.

    Args:
        src: (batch, src_len) padded source ids ending with EOS.
    Returns:
        per row, up to ``nbest`` hypotheses, best first.
    """
    if beam == 1:
        return [[h] for h in greedy_search(model, src, max_len_a, max_len_b)]
    return beam_search(model, src, beam, length_penalty, nbest, max_len_a, max_len_b)


def search_sources(
    model: EncoderDecoderModel,
    ids: Sequence[Sequence[int]],
    beam: int = 1,
    nbest: int = 1,
    length_penalty: float = 1.0,
    batch_size: int = 32,
    max_len_a: float = 1.5,
    max_len_b: int = 10,
    device: torch.device | str | None = None,
    progress: Callable[[int], object] | None = None,
) -> list[list[Hypothesis]]:
    """Search every source (subword ids without EOS, already fitting the model) in length-sorted batches;
    ``progress(n)`` is called after each batch with its number of sources (a progress bar's ``update``).

    Returns:
        per source, in input order, up to ``nbest`` hypotheses, best first; an empty list for an empty source.
    """
    cfg = model.config
    device = _device(model) if device is None else device
    results: list[list[Hypothesis]] = [[] for _ in ids]
    if progress is not None and any(not s for s in ids):
        progress(sum(1 for s in ids if not s))  # empty sources are done already
    for chunk in length_sorted_chunks([len(s) for s in ids], batch_size):
        src = pad_sources([ids[i] for i in chunk], cfg.pad_id, cfg.eos_id).to(device)
        found = search_batch(model, src, beam, nbest, length_penalty, max_len_a, max_len_b)
        for i, hyps in zip(chunk, found):
            results[i] = hyps
        if progress is not None:
            progress(len(chunk))
    return results


def _device(model: EncoderDecoderModel) -> torch.device:
    """Where the model's weights are (a model without parameters, such as a scripted one, runs on the CPU)."""
    parameters = getattr(model, "parameters", None)
    first = next(parameters(), None) if parameters is not None else None
    return first.device if first is not None else torch.device("cpu")
