"""Extractive summarization: score every sentence of a document, pick the best with redundancy control (maximal
marginal relevance, Carbonell & Goldstein, 1998), and return them in document order.

A sentence's score comes from a small trained scorer (``SentenceScorer``) over a few features — position,
length, embedding centrality, similarity to the first sentence, cue phrases ("we propose", "we show") — or, with
``ranking="centrality"``, from the cosine between its embedding and the document's mean embedding alone.
Embeddings are the sentence encoder's (MiniLM), one sentence at a time, so a document of any length is handled
without a window; a single sentence longer than the encoder's window is embedded in pieces (``embed_sentences``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from tformer.models.pipelines import SentenceEncoder
from tformer.summarize.sentences import cut_to_fit, split_sentences

SCORER_FILE = Path(__file__).with_name("scorer.json")  # the trained scorer shipped with the package
RANKINGS = ("learned", "centrality")

_PROPOSE = re.compile(r"\b(we|this paper|this work|our)\b[^.]*\b(propose|present|introduce|develop|describe|"
                      r"design|study|formulate|provide)", re.IGNORECASE)
_SHOW = re.compile(r"\b(show|demonstrate|find|found|achieve|outperform|improve|state[- ]of[- ]the[- ]art)",
                   re.IGNORECASE)
_HERE = re.compile(r"^(here|in this (paper|work|article)|this paper|we)\b", re.IGNORECASE)
_BACKGROUND = re.compile(r"^(however|recently|although|while|despite|many|most|existing|deep|neural)\b",
                         re.IGNORECASE)

FEATURES = (
    "position",  # index / (n - 1): 0 for the first sentence, 1 for the last
    "log_position",  # log(1 + index)
    "first", "second", "last",
    "log_words",  # log of the number of words
    "centrality",  # cosine with the document's mean embedding
    "centrality_rank",  # 1 for the most central sentence, 0 for the least
    "similarity_first",  # cosine with the first sentence
    "propose", "show", "here", "background",  # cue phrases
    "log_sentences",  # log of the document's number of sentences
)


def sentence_features(sentences: Sequence[str], embeddings: Tensor) -> Tensor:
    """One row of ``FEATURES`` per sentence: (n, features), from the texts and their unit-length embeddings
    (n, d_model)."""
    n = len(sentences)
    index = torch.arange(n, dtype=torch.float32)
    centre = torch.nn.functional.normalize(embeddings.mean(dim=0), dim=0)
    centrality = embeddings @ centre  # (n,)
    rank = torch.empty(n).scatter_(0, centrality.argsort(descending=True), index)
    words = torch.tensor([max(len(s.split()), 1) for s in sentences], dtype=torch.float32)

    def cue(pattern: re.Pattern) -> Tensor:
        return torch.tensor([1.0 if pattern.search(s) else 0.0 for s in sentences])

    columns = [
        index / max(n - 1, 1), torch.log1p(index),
        (index == 0).float(), (index == 1).float(), (index == n - 1).float(),
        words.log(), centrality, 1 - rank / max(n - 1, 1), embeddings @ embeddings[0],
        cue(_PROPOSE), cue(_SHOW), cue(_HERE), cue(_BACKGROUND),
        torch.full((n,), math.log(n)),
    ]
    return torch.stack(columns, dim=1)  # (n, features)


class SentenceScorer(torch.nn.Module):
    """A small multi-layer perceptron (or a linear model) from standardised features to a sentence score;
    only the order of the scores within a document matters."""

    def __init__(self, num_features: int = len(FEATURES), hidden: int = 0) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(num_features))
        self.register_buffer("std", torch.ones(num_features))
        if hidden:
            self.net = torch.nn.Sequential(torch.nn.Linear(num_features, hidden), torch.nn.ReLU(),
                                           torch.nn.Linear(hidden, 1))
        else:
            self.net = torch.nn.Sequential(torch.nn.Linear(num_features, 1))
        self.hidden = hidden

    def forward(self, features: Tensor) -> Tensor:
        """features: (n, num_features) -> scores (n,)."""
        return self.net((features - self.mean) / self.std).squeeze(-1)

    def to_json(self, path: str | Path, **extra) -> None:
        state = {name: tensor.tolist() for name, tensor in self.state_dict().items()}
        payload = {"features": list(FEATURES), "hidden": self.hidden, "state": state, **extra}
        Path(path).write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def from_json(cls, path: str | Path = SCORER_FILE) -> SentenceScorer:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        if list(payload["features"]) != list(FEATURES):
            raise ValueError(f"{path}: scorer trained on features {payload['features']}, this version computes "
                             f"{list(FEATURES)}; retrain it (scripts/summarization.py train)")
        scorer = cls(len(FEATURES), payload["hidden"])
        scorer.load_state_dict({name: torch.tensor(value) for name, value in payload["state"].items()})
        return scorer.eval()


def mmr_select(relevance: Tensor, similarity: Tensor, k: int, diversity: float = 0.3,
               duplicate: float = 0.95) -> list[int]:
    """Maximal marginal relevance: repeatedly take the sentence maximising
    ``(1 - diversity) * relevance - diversity * (highest similarity to a sentence already taken)``.

    Args:
        relevance: (n,) scores, rescaled here to [0, 1].
        similarity: (n, n) cosine similarities between the sentences, or anything whose ``[i]`` gives row i
            (``CosineRows``: rows computed when needed, for long documents).
        k: how many to take (at most n).
        diversity: weight of the redundancy penalty, in [0, 1].
        duplicate: a sentence at least this similar to one already taken is never taken (a repeated sentence).
    Returns:
        indices in the order they were taken (possibly fewer than k when only near-duplicates remain).
    """
    if not 0.0 <= diversity <= 1.0:
        raise ValueError(f"diversity must be in [0, 1], got {diversity}")
    n = relevance.numel()
    spread = relevance.max() - relevance.min()
    rel = (relevance - relevance.min()) / spread if spread > 0 else torch.ones(n)
    chosen: list[int] = []
    redundancy = torch.zeros(n)  # highest similarity to any chosen sentence
    available = torch.ones(n, dtype=torch.bool)
    while len(chosen) < min(k, n):
        gain = (1 - diversity) * rel - diversity * redundancy
        gain[~available] = -math.inf
        best = int(gain.argmax())
        if not available[best]:
            break
        chosen.append(best)
        redundancy = torch.maximum(redundancy, similarity[best])
        available &= redundancy < duplicate
    return chosen


class CosineRows:
    """Rows of the cosine-similarity matrix of unit-length embeddings (n, d_model), computed one at a time: a
    document of 50,000 sentences needs k rows, not an n x n matrix."""

    def __init__(self, embeddings: Tensor) -> None:
        self.embeddings = embeddings

    def __getitem__(self, i: int) -> Tensor:
        return self.embeddings @ self.embeddings[i]  # (n,)


def embed_sentences(encoder: SentenceEncoder, sentences: Sequence[str]) -> tuple[Tensor, int]:
    """Unit-length embeddings (n, d_model) of ``sentences``, and how many of them were longer than the encoder's
    window: each of those is cut at word boundaries into pieces that fit (``cut_to_fit``) and embedded as the mean
    of its pieces' embeddings, not from its first tokens only. An encoder without a tokenizer (a stand-in) embeds
    the sentences as they are."""
    tokenizer = getattr(encoder, "tokenizer", None)
    window = getattr(encoder, "max_length", None) or getattr(tokenizer, "model_max_length", None)
    if tokenizer is None or window is None:
        return encoder.encode(list(sentences)), 0
    lengths = [len(ids) for ids in tokenizer.encode_batch(list(sentences))]
    pieces: list[str] = []
    owner: list[int] = []  # the sentence each piece belongs to
    for i, (sentence, length) in enumerate(zip(sentences, lengths)):
        cut = [sentence] if length <= window else cut_to_fit(sentence, lambda t: len(tokenizer.encode(t)), window)
        pieces += cut
        owner += [i] * len(cut)
    vectors = encoder.encode(pieces)  # (pieces, d_model)
    if len(pieces) == len(sentences):
        return vectors, 0
    summed = torch.zeros(len(sentences), vectors.shape[1]).index_add_(0, torch.tensor(owner), vectors)
    return torch.nn.functional.normalize(summed, dim=-1), sum(1 for n in lengths if n > window)


@dataclass
class Summary:
    sentences: list[str]  # the chosen sentences, in document order
    indices: list[int]  # their positions among the document's sentences
    scores: list[float]  # every sentence's score, in document order
    notes: list[str] = field(default_factory=list)  # warnings for the reader (one sentence only, ...)

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


class ExtractiveSummarizer:
    """Sentences of a document ranked by the trained scorer (or centrality), chosen with redundancy control."""

    def __init__(self, encoder: SentenceEncoder, scorer: SentenceScorer | None = None, ranking: str = "learned",
                 diversity: float = 0.3) -> None:
        if ranking not in RANKINGS:
            raise ValueError(f"ranking must be one of {RANKINGS}, got {ranking!r}")
        if ranking == "learned" and scorer is None:
            raise ValueError("ranking='learned' needs a SentenceScorer")
        self.encoder, self.scorer, self.ranking, self.diversity = encoder, scorer, ranking, diversity

    @classmethod
    def from_pretrained(cls, encoder: str | Path = "minilm", ranking: str = "learned",
                        scorer: str | Path = SCORER_FILE, diversity: float = 0.3) -> ExtractiveSummarizer:
        loaded = SentenceScorer.from_json(scorer) if ranking == "learned" else None
        return cls(SentenceEncoder.from_pretrained(encoder), loaded, ranking, diversity)

    @torch.no_grad()
    def score(self, sentences: Sequence[str], embeddings: Tensor) -> Tensor:
        """(n,) scores of the sentences, higher = more summary-worthy."""
        features = sentence_features(sentences, embeddings)
        if self.ranking == "centrality":
            return features[:, FEATURES.index("centrality")]
        return self.scorer(features)

    def summarize(self, text: str, sentences: int = 1) -> Summary:
        """The ``sentences`` best sentences of ``text`` (split by ``split_sentences``), in document order."""
        return self.summarize_sentences(split_sentences(text), sentences)

    def summarize_sentences(self, document: Sequence[str], sentences: int = 1) -> Summary:
        """As ``summarize``, for a document already split into sentences."""
        if sentences < 1:
            raise ValueError(f"the number of summary sentences must be >= 1, got {sentences}")
        document = [s for s in document if s.strip()]
        if not document:
            raise ValueError("nothing to summarize: the document has no sentences")
        notes = []
        if len(document) == 1:
            notes.append("the document has one sentence; it is its own summary")
        elif sentences >= len(document):
            notes.append(f"asked for {sentences} sentences but the document has {len(document)}; all are returned")
        embeddings, cut = embed_sentences(self.encoder, document)  # (n, d_model), unit length
        if cut:
            notes.append(f"{cut} sentence(s) longer than the sentence encoder's window were embedded in pieces; "
                         "they are returned whole")
        scores = self.score(document, embeddings)
        chosen = sorted(mmr_select(scores, CosineRows(embeddings), sentences, self.diversity))
        if len(chosen) < min(sentences, len(document)):
            notes.append(f"only {len(chosen)} sentences are not repeats of each other")
        return Summary([document[i] for i in chosen], chosen, scores.tolist(), notes)
