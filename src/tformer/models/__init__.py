"""Whole models assembled from ``tformer.nn``."""

from tformer.models.config import TransformerConfig
from tformer.models.seq2seq import Seq2SeqTransformer

__all__ = ["Seq2SeqTransformer", "TransformerConfig"]
