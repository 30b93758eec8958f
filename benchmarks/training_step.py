"""Case 1: one training step (forward, label-smoothed loss, backward, clipping, AdamW) on real Multi30k batches.

tformer's model against Hugging Face's ``MarianMTModel`` built from it by ``tformer.interop.marian.to_marian``:
identical configuration (dropout included) and identical starting weights; the same loss function and optimiser
settings on both sides.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from tformer.data.batching import token_budget_batches
from tformer.data.corpus import multi30k
from tformer.decoding.translator import Translator
from tformer.interop.marian import to_marian
from tformer.models.seq2seq import Seq2SeqTransformer
from tformer.training.data import Batch, collate, encode_pairs
from tformer.training.losses import batch_loss, label_smoothed_nll_loss

from benchmarks.harness import SideResult, measure

LABEL_SMOOTHING = 0.1


def real_batches(translator: Translator, count: int, max_tokens: int, pairs: int = 3000) -> list[Batch]:
    """``count`` token-budget batches from the first ``pairs`` Multi30k training pairs, as the trainer makes them."""
    corpus = multi30k("train")
    tok, cfg = translator.tokenizer, translator.model.config
    examples = encode_pairs(tok.encode_batch(corpus.src[:pairs]), tok.encode_batch(corpus.tgt[:pairs]), 100)
    lengths = [max(len(s), len(t)) + 1 for s, t in examples]
    groups = token_budget_batches(lengths, max_tokens, seed=1, epoch=0)[:count]
    return [collate([examples[i] for i in group], cfg.pad_id, cfg.bos_id, cfg.eos_id) for group in groups]


def step_function(
    loss_of: Callable[[Batch], Tensor], model: nn.Module, batches: list[Batch], pad_id: int
) -> Callable[[], object]:
    """One optimiser update per call, cycling through ``batches`` (both sides see the same sequence).

    ``loss_of(batch)`` is the summed label-smoothed loss; each side computes it its own way.
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.98))
    state = {"next": 0}

    def step() -> None:
        batch = batches[state["next"] % len(batches)]
        state["next"] += 1
        model.train()
        (loss_of(batch) / batch.num_target_tokens(pad_id)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def run_case(translator: Translator, batches: list[Batch], repeats: int, warmup: int) -> dict[str, SideResult]:
    cfg = translator.model.config
    ours = Seq2SeqTransformer(cfg)
    ours.load_state_dict(translator.model.state_dict())
    theirs = to_marian(ours)
    check = batches[0]
    with torch.inference_mode():
        difference = (ours.eval()(check.src, check.tgt_in)
                      - theirs.eval()(input_ids=check.src, attention_mask=check.src.ne(cfg.pad_id),
                                      decoder_input_ids=check.tgt_in).logits).abs().max().item()

    def hf_loss(batch: Batch) -> Tensor:
        # What MarianMTModel does when given labels: logits at every target position, padding included.
        logits = theirs(input_ids=batch.src, attention_mask=batch.src.ne(cfg.pad_id), decoder_input_ids=batch.tgt_in,
                        use_cache=False).logits
        return label_smoothed_nll_loss(logits, batch.tgt_out, LABEL_SMOOTHING, cfg.pad_id)[0]

    def tformer_loss(batch: Batch) -> Tensor:
        return batch_loss(ours, batch, LABEL_SMOOTHING, cfg.pad_id)[0]  # as tformer's trainer

    sides = {
        "tformer": step_function(tformer_loss, ours, batches, cfg.pad_id),
        "hf": step_function(hf_loss, theirs, batches, cfg.pad_id),
    }
    # Each repeat runs every batch once, so every side's repeat does the same work.
    rounds = {name: _rounds(step, len(batches)) for name, step in sides.items()}
    tokens = sum(b.num_target_tokens(cfg.pad_id) for b in batches)
    results = measure(rounds, tokens, "target tokens", repeats, warmup)
    for result in results.values():
        result.extra.update(batches=len(batches), max_abs_logit_difference=difference)
    return results


def _rounds(step: Callable[[], object], count: int) -> Callable[[], object]:
    def run() -> None:
        for _ in range(count):
            step()

    return run
