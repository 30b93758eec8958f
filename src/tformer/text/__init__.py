"""Tokenizers: BPE for translation (trained here), WordPiece/any ``tokenizer.json`` for pretrained encoders."""

from tformer.text.bpe import BPETokenizer

__all__ = ["BPETokenizer"]
