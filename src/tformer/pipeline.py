"""``tformer.pipeline(task)``: the one-line entry point Hugging Face users know, over tformer's own models.

    >>> translate = tformer.pipeline("translation")
    >>> translate("Ein Mann fährt Fahrrad.")
    [{'translation_text': 'A man is riding a bike.'}]

Each task returns what the same task returns in ``transformers``: a list with one dict per input text (for one
string, a list of one), except ``feature-extraction``, which gives sentence vectors (a (d_model,) tensor for one
string, (texts, d_model) for a list) rather than per-token states, and ``question-answering``, which gives one
dict per question.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from tformer.text.inputs import text_batch


class Pipeline:
    """A model and what turns texts into its answers; call it with a string or a list of strings."""

    task = ""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __repr__(self) -> str:
        return f"<tformer pipeline {self.task!r}: {type(self.model).__name__}>"


class TranslationPipeline(Pipeline):
    task = "translation"

    def __call__(self, texts: str | list[str], beam: int = 4, **options: Any) -> list[dict[str, str]]:
        """German -> English: ``[{"translation_text": ...}]`` per text. Options go to ``Translator.translate``."""
        batch, _ = text_batch(texts)
        return [{"translation_text": t} for t in self.model.translate(batch, beam, **options)]


class TextClassificationPipeline(Pipeline):
    task = "text-classification"

    def __call__(self, texts: str | list[str], top_k: int | None = 1) -> list[Any]:
        """``[{"label", "score"}]`` per text; with ``top_k`` > 1 (or None: every label) a list of such dicts per
        text, best first."""
        batch, _ = text_batch(texts)
        probs = self.model.predict_proba(batch)  # (texts, labels)
        labels = self.model.labels
        out: list[Any] = []
        for row in probs:
            ranked = sorted(range(len(labels)), key=lambda k: -float(row[k]))[: top_k or len(labels)]
            scored = [{"label": labels[k], "score": float(row[k])} for k in ranked]
            out.append(scored[0] if top_k == 1 else scored)
        return out


class FeatureExtractionPipeline(Pipeline):
    task = "feature-extraction"

    def __call__(self, texts: str | list[str], normalize: bool = True) -> torch.Tensor:
        """Sentence embeddings (mean-pooled, L2-normalised): (d_model,) for one string, (texts, d_model) for a list."""
        return self.model.encode(texts, normalize=normalize)


class SummarizationPipeline(Pipeline):
    task = "summarization"

    def __call__(self, texts: str | list[str], sentences: int = 1) -> list[dict[str, str]]:
        """``[{"summary_text": ...}]`` per document: its ``sentences`` most telling sentences (extractive)."""
        batch, _ = text_batch(texts)
        return [{"summary_text": self.model.summarize(text, sentences).text} for text in batch]


class QuestionAnsweringPipeline(Pipeline):
    task = "question-answering"

    def __call__(self, question: str, context: str | list[str], top_k: int = 1) -> Any:
        """``{"answer", "score", "start", "end"}`` (character offsets in the context); a list of them for
        ``top_k`` > 1. Called as Hugging Face's is: ``qa(question=..., context=...)``."""
        text_batch(question, "question")
        spans = self.model.answer(question, context, top_k)
        found = [{"answer": s.text, "score": s.score, "start": s.start, "end": s.end} for s in spans]
        return found[0] if top_k == 1 and found else found


class TextGenerationPipeline(Pipeline):
    task = "text-generation"

    def __init__(self, model: Any, tokenizer: Any) -> None:
        super().__init__(model)
        self.tokenizer = tokenizer

    def __call__(self, texts: str | list[str], max_new_tokens: int = 50, **options: Any) -> list[dict[str, str]]:
        """``[{"generated_text": prompt + continuation}]`` per prompt; options (temperature, top_k, top_p, seed,
        stop, ...) go to ``tformer.decoding.generate.GenerationConfig``."""
        from tformer.decoding.generate import GenerationConfig, generate

        batch, _ = text_batch(texts)
        config = GenerationConfig(max_new_tokens=max_new_tokens, **options)
        return [{"generated_text": p + c} for p, c in zip(batch, generate(self.model, self.tokenizer, batch, config))]


def _translation(model: str | Path | None, device: str | None) -> Pipeline:
    from tformer.decoding.translator import Translator

    return TranslationPipeline(Translator.from_pretrained(model, device=device))


def _classification(model: str | Path | None, device: str | None) -> Pipeline:
    from tformer.models.pipelines import TextClassifier

    return TextClassificationPipeline(TextClassifier.from_pretrained(model or "sentiment", device=device))


def _features(model: str | Path | None, device: str | None) -> Pipeline:
    from tformer.models.pipelines import SentenceEncoder

    return FeatureExtractionPipeline(SentenceEncoder.from_pretrained(model or "minilm", device=device))


def _summarization(model: str | Path | None, device: str | None) -> Pipeline:
    try:
        from tformer.summarize.extractive import ExtractiveSummarizer
    except ImportError:  # the summarizer is a later addition: say so rather than show an import error
        raise ValueError("summarization is not part of this tformer installation") from None

    summarizer = ExtractiveSummarizer.from_pretrained(model or "minilm")
    summarizer.encoder.to(device or "cpu")
    return SummarizationPipeline(summarizer)


def _question_answering(model: str | Path | None, device: str | None) -> Pipeline:
    from tformer.models.qa_pipeline import QuestionAnswerer

    if device not in (None, "cpu"):
        raise ValueError(f"question-answering runs on the CPU only for now, not {device!r}")
    return QuestionAnsweringPipeline(QuestionAnswerer.from_pretrained(model or "squad"))


def _generation(model: str | Path | None, device: str | None) -> Pipeline:
    from tformer.interop.gguf import load_gguf_tokenizer
    from tformer.models.causal_lm import CausalLM

    if device not in (None, "cpu"):
        raise ValueError(f"text-generation runs on the CPU only for now, not {device!r}")
    name = model or "smollm2"
    return TextGenerationPipeline(CausalLM.from_pretrained(name), load_gguf_tokenizer(name))


TASKS: dict[str, Callable[[str | Path | None, str | None], Pipeline]] = {
    "translation": _translation,
    "text-classification": _classification,
    "feature-extraction": _features,
    "summarization": _summarization,
    "question-answering": _question_answering,
    "text-generation": _generation,
}
ALIASES = {"translation_de_to_en": "translation", "sentiment-analysis": "text-classification",
           "sentence-similarity": "feature-extraction"}


def pipeline(task: str, model: str | Path | None = None, device: str | torch.device | None = None) -> Pipeline:
    """A ready-to-call pipeline for ``task``, with tformer's bundled model for it unless ``model`` names another.

    Tasks (default model): ``translation`` (the bundled German-English Transformer), ``text-classification``
    (the bundled sentiment classifier; ``"spam"`` or a folder for another), ``feature-extraction`` (MiniLM
    sentence embeddings), ``summarization`` (extractive, on MiniLM), ``question-answering`` (MiniLM fine-tuned on
    SQuAD), ``text-generation`` (SmolLM2-135M-Instruct). ``device``: ``"cpu"`` (default), ``"cuda"``, ``"auto"``.
    """
    name = ALIASES.get(task, task)
    if name not in TASKS:
        raise ValueError(f"unknown task {task!r}; tformer has: {', '.join([*TASKS, *ALIASES])}")
    return TASKS[name](model, None if device is None else str(device))
