"""Case 3: a BERT encoder forward pass on MiniLM (all-MiniLM-L6-v2), tformer's ``BertModel`` against Hugging Face's.

Both load the same checkpoint folder; inputs are the same random token ids (no padding), run under
``torch.inference_mode``.
"""

from __future__ import annotations

import torch

from benchmarks.harness import SideResult, measure

SHAPES = ((32, 128), (1, 16))  # (batch, seq)


def load_models(name: str = "minilm") -> tuple[torch.nn.Module, torch.nn.Module]:
    from transformers import BertModel as HFBertModel

    from tformer.models.bert import BertModel
    from tformer.pretrained import resolve_pretrained

    ours = BertModel.from_pretrained(name).eval()
    theirs = HFBertModel.from_pretrained(resolve_pretrained(name), add_pooling_layer=True).eval()
    return ours, theirs


def run_case(
    ours: torch.nn.Module, theirs: torch.nn.Module, batch: int, seq: int, repeats: int, warmup: int, calls: int = 1
) -> dict[str, SideResult]:
    """Time ``calls`` forward passes per repeat on a (batch, seq) input; record the outputs' largest difference."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, ours.config.vocab_size, (batch, seq), generator=generator)
    ids[:, 0] = 101  # [CLS]
    mask = torch.ones_like(ids)

    def run_ours() -> torch.Tensor:
        with torch.inference_mode():
            for _ in range(calls):
                hidden = ours(ids, mask).last_hidden_state
        return hidden

    def run_theirs() -> torch.Tensor:
        with torch.inference_mode():
            for _ in range(calls):
                hidden = theirs(input_ids=ids, attention_mask=mask).last_hidden_state
        return hidden

    difference = (run_ours() - run_theirs()).abs().max().item()
    results = measure({"tformer": run_ours, "hf": run_theirs}, batch * calls, "sequences", repeats, warmup)
    for result in results.values():
        result.extra.update(max_abs_difference=difference, calls_per_repeat=calls)
    return results
