"""Summarization: extractive (sentences chosen from the document) and abstractive (written by a chat model)."""

from tformer.summarize.abstractive import AbstractiveSummarizer
from tformer.summarize.extractive import ExtractiveSummarizer, SentenceScorer, Summary, mmr_select
from tformer.summarize.sentences import split_sentences

__all__ = [
    "AbstractiveSummarizer", "ExtractiveSummarizer", "SentenceScorer", "Summary", "mmr_select", "split_sentences",
]
