"""Retrieval: documents cut into overlapping passages, embedded with the sentence encoder and kept in a vector
index (FAISS) beside their text and sources (SQLite, with FTS5 for BM25), searched densely, lexically or both."""

from tformer.retrieval.index import Hit, PassageIndex

__all__ = ["Hit", "PassageIndex"]
