"""A character-level tokenizer: one token per character of a training text, stored as a ``tokenizers`` file.

Saved as ``tokenizer.json`` (a word-level model whose words are single characters), so the generic loaders read
it like any other model's tokenizer (``tformer.interop.hf_causal.load_chat_tokenizer``). A character the training
text never had becomes ``<unk>`` (id 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tokenizers import Regex, decoders, models, pre_tokenizers
from tokenizers import Tokenizer as HFTokenizer

from tformer.errors import ModelFolderError

UNK = "<unk>"
TOKENIZER_FILE = "tokenizer.json"


class CharTokenizer:
    """Text <-> character ids. ``CharTokenizer.from_text(corpus)``, ``save_pretrained(folder)``,
    ``from_pretrained(folder)``."""

    def __init__(self, tokenizer: HFTokenizer) -> None:
        self.tokenizer = tokenizer
        self.unk_id = tokenizer.token_to_id(UNK)
        if self.unk_id is None:
            raise ModelFolderError(f"not a character tokenizer: no {UNK} token")

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """The vocabulary: ``<unk>`` then every distinct character of ``text`` in code-point order."""
        vocab = {UNK: 0, **{c: i + 1 for i, c in enumerate(sorted(set(text)))}}
        tokenizer = HFTokenizer(models.WordLevel(vocab, unk_token=UNK))
        tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # every character
        tokenizer.decoder = decoders.Fuse()  # join the characters back without separators
        return cls(tokenizer)

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> CharTokenizer:
        path = Path(folder) / TOKENIZER_FILE
        if not path.is_file():
            raise ModelFolderError(f"{folder}: missing {TOKENIZER_FILE}")
        try:
            return cls(HFTokenizer.from_file(str(path)))
        except Exception as err:  # tokenizers raises a bare Exception on a malformed file
            raise ModelFolderError(f"{path}: not a tokenizer file ({err})") from None

    def save_pretrained(self, folder: str | Path) -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(str(Path(folder) / TOKENIZER_FILE))

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)
