"""Case 2: translating real test sentences with the same model in tformer, Hugging Face and CTranslate2.

Every side gets the same sentences, the same length limits and the same batching (sentences sorted by length, then
cut into batches), starts from text and ends with token ids. The Hugging Face and CTranslate2 models are exports of
the tformer model (``tformer.interop``), so all float32 sides compute the same function. Each precision races the
same precision: "tformer-int8" (``Translator.from_pretrained(..., precision="int8")``) against CTranslate2's int8,
"tformer-bfloat16" against CTranslate2's bfloat16 where CTranslate2 offers it on this machine. ``quality`` scores
every side on a whole test set: BLEU, and the share of translations identical to its own float32 side's.
"""

from __future__ import annotations

import functools
import importlib.util
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from tformer.data.batching import length_sorted_chunks
from tformer.decoding.search import max_output_length
from tformer.decoding.translator import Translator
from tformer.interop.ctranslate2 import CTranslate2Translator, export_ctranslate2
from tformer.interop.marian import export_marian
from tformer.models.seq2seq import PRECISIONS

from benchmarks.harness import SideResult, measure
from benchmarks.isolated import ChildSide

Side = Callable[[Sequence[str], int, int], list[list[int]]]  # (texts, beam, batch_size) -> token ids per text


@dataclass
class Engines:
    """The translation sides, loaded once and reused by every (beam, batch size) setting."""

    sides: dict[str, Side]
    translator: Translator
    notes: list[str] = field(default_factory=list)  # sides left out, and why

    def close(self) -> None:
        """Stop the child processes of sides that run in one."""
        for side in self.sides.values():
            if isinstance(side, ChildSide):
                side.close()


def load_engines(model_dir: Path, threads: int, precisions: Sequence[str] = PRECISIONS) -> Engines:
    """tformer at each of ``precisions`` ("tformer" is float32), Hugging Face, and CTranslate2 at the same
    precisions when ctranslate2 is installed; a precision this machine cannot run is left out with a note."""
    translator = Translator.from_pretrained(model_dir)
    penalty = float(getattr(translator, "length_penalty", 1.0))  # the model's beam setting, used by every side
    sides: dict[str, Side] = {"tformer": tformer_side(translator, penalty)}
    notes: list[str] = []
    for precision in precisions:
        if precision != "float32":
            try:
                sides[f"tformer-{precision}"] = tformer_side(Translator.from_pretrained(model_dir, precision=precision),
                                                             penalty)
            except ValueError as error:
                notes.append(f"tformer-{precision} left out: {error}")
    workdir = Path(tempfile.mkdtemp(prefix="tformer-bench-"))
    sides["hf"] = hf_side(export_marian(translator, workdir / "hf-marian"), translator, penalty)
    if importlib.util.find_spec("ctranslate2") is None:
        notes.append("ctranslate2 is not installed: its sides are left out (pip install ctranslate2)")
    else:
        folder = export_ctranslate2(translator, workdir / "ctranslate2")
        for compute_type in precisions:
            # Its own process: CTranslate2's OpenMP runtime slows every PyTorch side that runs after it in the same
            # process (see benchmarks.isolated).
            try:
                sides[f"ct2-{compute_type}"] = ChildSide(ct2_side, folder, compute_type, threads, penalty)
            except RuntimeError as error:  # e.g. no bfloat16 on this CPU in CTranslate2's kernels
                notes.append(f"ct2-{compute_type} left out: {error}")
    for note in notes:
        print(f"  note: {note}", flush=True)
    return Engines(sides, translator, notes)


def float32_side(name: str) -> str:
    """The side whose translations ``name``'s are compared with: its own engine's float32 side."""
    return "ct2-float32" if name.startswith("ct2-") else "tformer"


def tformer_side(translator: Translator, penalty: float) -> Side:
    def run(texts: Sequence[str], beam: int, batch_size: int) -> list[list[int]]:
        found = translator.search(texts, beam=beam, length_penalty=penalty, batch_size=batch_size)
        return [hyps[0].tokens if hyps else [] for hyps in found]

    return run


def ct2_side(folder: Path, compute_type: str, threads: int, penalty: float) -> Side:
    """CTranslate2 on the exported folder; built inside the child process of a ``ChildSide``."""
    ct2 = CTranslate2Translator(folder, compute_type=compute_type, threads=threads)

    def run(texts: Sequence[str], beam: int, batch_size: int) -> list[list[int]]:
        return ct2.search(texts, beam=beam, batch_size=batch_size, length_penalty=penalty)

    return run


def hf_side(folder: Path, translator: Translator, penalty: float) -> Side:
    """``MarianMTModel.generate`` on the exported folder, with tformer's length limit per batch."""
    from transformers import AutoTokenizer, MarianMTModel

    model = MarianMTModel.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    cfg = translator.model.config

    def run(texts: Sequence[str], beam: int, batch_size: int) -> list[list[int]]:
        lengths = [len(ids) for ids in translator.encode_sources(texts)]
        results: list[list[int]] = [[] for _ in texts]
        for chunk in length_sorted_chunks(lengths, batch_size):  # as tformer batches (decoding.batching)
            batch = tokenizer([texts[i] for i in chunk], return_tensors="pt", padding=True)
            limit = max(max_output_length(lengths[i] + 1, cfg.max_len) for i in chunk)
            search = dict(num_beams=beam, length_penalty=penalty, early_stopping=True) if beam > 1 else \
                dict(num_beams=1, early_stopping=False)  # the exported generation config defaults to beam 4
            with torch.inference_mode():
                out = model.generate(**batch, **search, do_sample=False, max_length=limit + 2,
                                     forced_eos_token_id=cfg.eos_id)
            for i, row in zip(chunk, out[:, 1:].tolist()):  # drop the decoder start token
                results[i] = row[: row.index(cfg.eos_id)] if cfg.eos_id in row else row
        return results

    return run


def run_case(
    engines: Engines, texts: Sequence[str], beam: int, batch_size: int, repeats: int, warmup: int
) -> dict[str, SideResult]:
    """Time every side on ``texts``; record generated tokens and agreement with tformer's output."""
    outputs: dict[str, list[list[int]]] = {}

    def timed(name: str, side: Side) -> Callable[[], object]:
        def run() -> None:
            outputs[name] = side(texts, beam, batch_size)

        return run

    peaks = {name: functools.partial(side.peak_memory, texts, beam, batch_size)
             for name, side in engines.sides.items() if isinstance(side, ChildSide)}
    results = measure({name: timed(name, side) for name, side in engines.sides.items()}, len(texts), "sentences",
                      repeats, warmup, peaks)
    annotate(engines, results, outputs)
    return results


def annotate(engines: Engines, results: dict[str, SideResult], outputs: dict[str, list[list[int]]]) -> None:
    """Generated tokens, ms per token, the translations, and the share identical to tformer's float32 output and
    to the side's own float32 output (``float32_side``)."""
    for name, result in results.items():
        generated = sum(len(ids) + 1 for ids in outputs[name])  # + EOS
        result.extra.update(
            generated_tokens=generated,
            ms_per_token=1000 * result.median_seconds / generated,
            same_as_tformer=_same(outputs[name], outputs["tformer"]),
            translations=[engines.translator.tokenizer.decode(ids) for ids in outputs[name]],
        )
        if float32_side(name) in outputs:
            result.extra["same_as_float32"] = _same(outputs[name], outputs[float32_side(name)])


def _same(a: list[list[int]], b: list[list[int]]) -> float:
    return sum(x == y for x, y in zip(a, b)) / max(len(a), 1)


def quality(engines: Engines, texts: Sequence[str], beam: int, batch_size: int) -> dict[str, SideResult]:
    """Every side translates ``texts`` once (not the timed runs: a whole test set), for BLEU and agreement; the
    seconds are of that one run."""
    outputs: dict[str, list[list[int]]] = {}
    results = {}
    for name, side in engines.sides.items():
        start = time.perf_counter()
        outputs[name] = side(texts, beam, batch_size)
        results[name] = SideResult(name, [time.perf_counter() - start], len(texts), "sentences")
    annotate(engines, results, outputs)
    return results
