"""How subword pieces are shown to people in traces and attention pictures.

One convention for every model: a piece that starts a word is shown as written, a piece that continues the word
before it gets BERT's ``##`` prefix, special tokens (``</s>``, ``[SEP]``) are shown as they are.
"""

from __future__ import annotations

WORD_START = "\u2581"  # "▁", the Metaspace mark the BPE tokenizer puts before every word


def bpe_token_label(piece: str) -> str:
    """'▁Mann' -> 'Mann', 'rad' -> '##rad', '</s>' -> '</s>'."""
    if piece.startswith("<") and piece.endswith(">"):
        return piece
    if piece.startswith(WORD_START):
        return piece[len(WORD_START) :] or WORD_START
    return "##" + piece
