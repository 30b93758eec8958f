"""The everyday-sentence check: 50 German sentences a new user might type first (greetings, requests, directions,
shopping, time, family, work), with English translations written for this project (``everyday_de_en.tsv``).

Two figures: sacreBLEU and chrF against the reference (the first translation of each line), and the share of
**acceptable** outputs. An output is acceptable when, after ``normalize`` (lower case, curly quotes straightened,
common contractions spelled out — "I'm" = "I am", "don't" = "do not" —, punctuation dropped, spaces collapsed), it
equals the normalised reference or one of the sentence's other listed translations. The lists were written by hand
with the phrasings a fluent speaker would accept; anything else counts as not acceptable, even if it might be fine,
so the share is a lower bound.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources

from tformer.evaluation.bleu import corpus_scores

DATA_FILE = "everyday_de_en.tsv"

CONTRACTIONS = {"i'm": "i am", "you're": "you are", "we're": "we are", "they're": "they are", "he's": "he is",
                "she's": "she is", "it's": "it is", "that's": "that is", "what's": "what is", "where's": "where is",
                "there's": "there is", "let's": "let us", "i've": "i have", "you've": "you have",
                "we've": "we have", "i'll": "i will", "you'll": "you will", "we'll": "we will", "he'll": "he will",
                "she'll": "she will", "it'll": "it will", "i'd": "i would", "we'd": "we would", "don't": "do not",
                "doesn't": "does not", "didn't": "did not", "isn't": "is not", "aren't": "are not",
                "wasn't": "was not", "can't": "cannot", "can not": "cannot", "won't": "will not",
                "haven't": "have not", "hasn't": "has not", "couldn't": "could not", "shouldn't": "should not",
                "wouldn't": "would not"}
CONTRACTION = re.compile(r"\b(" + "|".join(re.escape(c) for c in sorted(CONTRACTIONS, key=len, reverse=True))
                         + r")\b")


@dataclass(frozen=True)
class EverydaySentence:
    topic: str
    german: str
    translations: tuple[str, ...]  # the reference first, then the other acceptable translations

    @property
    def reference(self) -> str:
        return self.translations[0]


def load_everyday_sentences() -> list[EverydaySentence]:
    """The check's sentences from the packaged TSV file (topic, German, reference, alternatives...)."""
    text = resources.files("tformer.evaluation").joinpath(DATA_FILE).read_text(encoding="utf-8")
    sentences = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) < 3 or not all(f.strip() for f in fields):
            raise ValueError(f"{DATA_FILE}:{number}: expected topic, German and at least one translation")
        sentences.append(EverydaySentence(fields[0], fields[1], tuple(fields[2:])))
    return sentences


def normalize(text: str) -> str:
    """The comparison form of an English sentence: "I'm fine, thanks!" -> "i am fine thanks"."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    text = CONTRACTION.sub(lambda m: CONTRACTIONS[m.group(1)], text)
    text = re.sub(r"[^\w\s'-]", " ", text)  # keep apostrophes ("chemist's") and hyphens ("e-mail")
    return " ".join(text.split())


def is_acceptable(output: str, sentence: EverydaySentence) -> bool:
    return normalize(output) in {normalize(t) for t in sentence.translations}


@dataclass
class EverydayResult:
    bleu: float
    chrf: float
    acceptable: int
    total: int
    signature: str = ""
    by_topic: dict[str, list[int]] = field(default_factory=dict)  # topic -> [acceptable, total]
    rejected: list[tuple[str, str, str]] = field(default_factory=list)  # (German, output, reference)

    @property
    def rate(self) -> float:
        return self.acceptable / self.total if self.total else 0.0

    def to_dict(self, max_rejected: int = 60) -> dict:
        return {"bleu": round(self.bleu, 2), "chrf": round(self.chrf, 2), "acceptable": self.acceptable,
                "total": self.total, "acceptable_rate": round(self.rate, 3), "signature": self.signature,
                "by_topic": self.by_topic, "rejected": [list(r) for r in self.rejected[:max_rejected]]}


def everyday_check(
    translate: Callable[[list[str]], list[str]], sentences: list[EverydaySentence] | None = None
) -> EverydayResult:
    """Translate the everyday sentences; BLEU/chrF against the references and the share of acceptable outputs."""
    sentences = load_everyday_sentences() if sentences is None else sentences
    outputs = translate([s.german for s in sentences])
    scores = corpus_scores(outputs, [s.reference for s in sentences])
    result = EverydayResult(scores.bleu, scores.chrf, 0, len(sentences), scores.bleu_signature)
    for sentence, output in zip(sentences, outputs):
        ok = is_acceptable(output, sentence)
        counts = result.by_topic.setdefault(sentence.topic, [0, 0])
        counts[0] += ok
        counts[1] += 1
        if ok:
            result.acceptable += 1
        else:
            result.rejected.append((sentence.german, output, sentence.reference))
    return result
