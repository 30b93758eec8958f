"""Corpus readers and batching by token budget."""
