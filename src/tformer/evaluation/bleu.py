"""Corpus-level sacreBLEU and chrF with their signatures (13a tokenisation, cased, detokenised input)."""

from __future__ import annotations

from dataclasses import dataclass

import sacrebleu


@dataclass
class TranslationScores:
    bleu: float
    chrf: float
    bleu_signature: str
    chrf_signature: str

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def corpus_scores(hypotheses: list[str], references: list[str]) -> TranslationScores:
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    bleu = sacrebleu.metrics.BLEU()
    chrf = sacrebleu.metrics.CHRF()
    b = bleu.corpus_score(hypotheses, [references])
    c = chrf.corpus_score(hypotheses, [references])
    return TranslationScores(b.score, c.score, str(bleu.get_signature()), str(chrf.get_signature()))


def corpus_bleu(hypotheses: list[str], references: list[str]) -> float:
    return sacrebleu.corpus_bleu(hypotheses, [references]).score
