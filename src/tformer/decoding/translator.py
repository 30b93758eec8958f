"""``Translator``: a trained translation model and its tokenizer, turning sentences into translations."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from tformer.decoding.batching import search_sources
from tformer.decoding.search import Hypothesis
from tformer.devices import module_device, resolve_device
from tformer.errors import ModelFolderError
from tformer.files import read_json
from tformer.models.seq2seq import PRECISIONS, Seq2SeqTransformer, with_precision
from tformer.text.bpe import BPETokenizer
from tformer.text.inputs import text_batch

# The bundled model lives in the repository's models/ folder; $TFORMER_MODEL overrides it.
BUNDLED_MODEL = Path(__file__).resolve().parents[3] / "models" / "multi30k-de-en"
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json")
GENERATION_FILE = "generation.json"  # optional decoding defaults, e.g. {"length_penalty": 1.0}


def default_model_dir() -> Path:
    return Path(os.environ.get("TFORMER_MODEL", BUNDLED_MODEL))


class Translator:
    """Translate German sentences to English with greedy (``beam=1``) or beam search.

    Empty and whitespace-only inputs give empty outputs; inputs longer than the model's maximum are truncated
    (with one warning on stderr); characters never seen in training become unknown tokens.
    """

    def __init__(self, model: Seq2SeqTransformer, tokenizer: BPETokenizer, length_penalty: float = 1.0,
                 precision: str = "float32") -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.length_penalty = length_penalty  # beam search default; a model folder's generation.json may set it
        self.precision = precision  # what the model computes in (see with_precision); informative

    @classmethod
    def from_pretrained(cls, folder: str | Path | None = None, device: str | torch.device | None = None,
                        precision: str = "float32") -> Translator:
        """The model folder (default: the bundled German-English model), on ``device`` (``"cpu"``, ``"cuda"``,
        ``"cuda:1"``, ``"auto"``; default the CPU), computing in ``precision``: "float32" (default), "bfloat16"
        (CPUs with AVX512-BF16 or AMX, and GPUs) or "int8" (CPU; weights in int8, inputs quantized on the fly).
        Lower precisions translate faster and slightly differently (docs/benchmarks.md measures how much)."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        folder = Path(folder) if folder is not None else default_model_dir()
        if not folder.is_dir():
            raise ModelFolderError(f"model folder not found: {folder}")
        missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
        if missing:
            found = sorted(p.name for p in folder.iterdir())
            raise ModelFolderError(f"{folder}: missing {', '.join(missing)} (found: {', '.join(found) or 'nothing'})")
        generation = folder / GENERATION_FILE
        settings = read_json(generation) if generation.is_file() else {}
        length_penalty = settings.get("length_penalty", 1.0)
        if isinstance(length_penalty, bool) or not isinstance(length_penalty, int | float):
            raise ModelFolderError(f"{generation}: length_penalty must be a number, got {length_penalty!r}")
        translator = cls(Seq2SeqTransformer.from_pretrained(folder), BPETokenizer.from_pretrained(folder),
                         length_penalty=float(length_penalty))
        if device is not None:
            translator.to(device)
        translator.model, translator.precision = with_precision(translator.model, precision), precision
        return translator

    @property
    def device(self) -> torch.device:
        return module_device(self.model)

    def to(self, device: str | torch.device) -> Translator:
        """Move the model to ``device`` (checked: a missing GPU is a ValueError saying so); returns self."""
        self.model.to(resolve_device(device))
        return self

    def save_pretrained(self, folder: str | Path, dtype: torch.dtype | None = None) -> None:
        self.model.save_pretrained(folder, dtype=dtype)
        self.tokenizer.save_pretrained(folder)
        (Path(folder) / GENERATION_FILE).write_text(json.dumps({"length_penalty": self.length_penalty}) + "\n")

    def translate(
        self,
        texts: str | Sequence[str],
        beam: int = 4,
        length_penalty: float | None = None,
        batch_size: int = 32,
        max_len_a: float = 1.5,
        max_len_b: int = 10,
        progress: Callable[[int], object] | None = None,
    ) -> str | list[str]:
        """One translation per input text, in order; a single string gives a single string."""
        batch, single = text_batch(texts)
        nbest = self.translate_nbest(batch, beam, 1, length_penalty, batch_size, max_len_a, max_len_b, progress)
        out = [hyps[0][0] if hyps else "" for hyps in nbest]
        return out[0] if single else out

    def translate_nbest(
        self,
        texts: str | Sequence[str],
        beam: int = 4,
        nbest: int = 1,
        length_penalty: float | None = None,
        batch_size: int = 32,
        max_len_a: float = 1.5,
        max_len_b: int = 10,
        progress: Callable[[int], object] | None = None,
    ) -> list[list[tuple[str, float]]] | list[tuple[str, float]]:
        """Per input, up to ``nbest`` (translation, score) pairs, best first; an empty list for empty input.
        A single string gives its own list of pairs."""
        batch, single = text_batch(texts)
        hyps = self.search(batch, beam, nbest, length_penalty, batch_size, max_len_a, max_len_b, progress)
        out = [[(self.tokenizer.decode(h.tokens), h.normalized_score if h.normalized_score is not None else h.score)
                 for h in row] for row in hyps]
        return out[0] if single else out

    def encode_sources(self, texts: Sequence[str]) -> list[list[int]]:
        """Subword ids per text, truncated to fit the model (EOS is added later); warns once when truncating."""
        limit = self.model.config.max_len - 1
        ids = self.tokenizer.encode_batch(text_batch(texts)[0])
        if any(len(i) > limit for i in ids):
            n = sum(len(i) > limit for i in ids)
            print(f"tformer: warning: {n} input(s) longer than {limit} subwords truncated", file=sys.stderr)
        return [i[:limit] for i in ids]

    def search(
        self,
        texts: Sequence[str],
        beam: int = 4,
        nbest: int = 1,
        length_penalty: float | None = None,
        batch_size: int = 32,
        max_len_a: float = 1.5,
        max_len_b: int = 10,
        progress: Callable[[int], object] | None = None,
    ) -> list[list[Hypothesis]]:
        """Hypotheses (token ids and scores) per input, in input order, length-sorted batches inside
        (``tformer.decoding.batching``); an empty list for an empty input. ``progress(n)`` is called as each
        batch of ``n`` inputs is done (e.g. a tqdm bar's ``update``)."""
        length_penalty = self.length_penalty if length_penalty is None else length_penalty
        texts, _ = text_batch(texts)
        return search_sources(self.model, self.encode_sources(texts), beam, nbest, length_penalty, batch_size,
                              max_len_a, max_len_b, progress=progress)
