"""A stand-in sentence encoder for fast index tests: hashed bag of words, L2-normalised (so texts sharing words
are close), with a call counter and a settable fingerprint."""

import re
import zlib

import numpy as np


class WordsEncoder:
    def __init__(self, dim: int = 256, fingerprint: str = "fake-v1", max_tokens: int = 12) -> None:
        self.name, self.dim, self.fingerprint, self.max_tokens = "fake", dim, fingerprint, max_tokens
        self.encoded = 0  # texts embedded so far

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in re.finditer(r"\w+|[^\w\s]", text)]

    def encode(self, texts, batch_size: int = 32) -> np.ndarray:
        self.encoded += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, zlib.crc32(word.encode()) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-9)
