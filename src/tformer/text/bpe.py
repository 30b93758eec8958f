"""Joint subword tokenizer for translation: BPE trained with the ``tokenizers`` library.

Normalisation (documented, applied before encoding): Unicode NFKC, every run of whitespace becomes one space,
leading/trailing whitespace is removed. Words are split at spaces (Metaspace, "▁" marks a word start); with
``split_digits`` every digit is also a token of its own ("1985" -> "▁", "1", "9", "8", "5"), so a translation model
copies numbers digit by digit instead of through merged pieces such as "▁19" + "85". ``decode(encode(s))``
reproduces ``normalize(s)`` for any text whose characters were seen in training; unseen characters become
``<unk>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Regex, decoders, normalizers, pre_tokenizers
from tokenizers import Tokenizer as HFTokenizer
from tokenizers.models import BPE
from tokenizers.trainers import BpeTrainer

from tformer.errors import ModelFolderError

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK]  # ids 0, 1, 2, 3
TOKENIZER_FILE = "tokenizer.json"


DIGITS = "0123456789"


def _normalizer() -> normalizers.Normalizer:
    return normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()])


def _pre_tokenizer(split_digits: bool) -> pre_tokenizers.PreTokenizer:
    words = pre_tokenizers.Metaspace()
    if not split_digits:
        return words
    return pre_tokenizers.Sequence([words, pre_tokenizers.Digits(individual_digits=True)])


class BPETokenizer:
    """Wraps a ``tokenizers.Tokenizer`` with the special tokens tformer's models expect."""

    def __init__(self, tokenizer: HFTokenizer) -> None:
        self._tok = tokenizer
        ids = [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS]
        if any(i is None for i in ids):
            raise ValueError(f"tokenizer lacks special tokens {SPECIAL_TOKENS}")
        self.pad_id, self.bos_id, self.eos_id, self.unk_id = ids

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 8000, min_frequency: int = 2,
              split_digits: bool = False) -> BPETokenizer:
        tok = HFTokenizer(BPE(unk_token=UNK))
        tok.normalizer = _normalizer()
        tok.pre_tokenizer = _pre_tokenizer(split_digits)
        tok.decoder = decoders.Metaspace()
        trainer = BpeTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS, show_progress=False
        )
        tok.train_from_iterator(texts, trainer=trainer)
        return cls(tok)

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> BPETokenizer:
        path = Path(folder) / TOKENIZER_FILE
        if not path.is_file():
            raise ModelFolderError(f"tokenizer file missing: {path}")
        try:
            return cls(HFTokenizer.from_file(str(path)))
        except Exception as err:  # tokenizers raises a bare Exception for a truncated or malformed file
            raise ModelFolderError(f"{path}: not a valid tokenizer file ({err})") from None

    def save_pretrained(self, folder: str | Path) -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        self._tok.save(str(Path(folder) / TOKENIZER_FILE))

    @property
    def splits_digits(self) -> bool:
        """Whether every digit is a token of its own (see the module docstring)."""
        pieces = self._tok.pre_tokenizer.pre_tokenize_str("12")
        return [piece for piece, _ in pieces if piece != "▁"] == ["1", "2"]

    def with_split_digits(self) -> BPETokenizer:
        """The same vocabulary and ids, with digits split into single tokens from now on: a model trained with
        this tokenizer's merged numbers ("▁19", "85") can be trained further on split ones. The merged number
        pieces stay in the vocabulary, unused."""
        missing = [t for t in [*DIGITS, "▁"] if self._tok.token_to_id(t) is None]
        if missing:
            raise ValueError(f"cannot split digits: the vocabulary lacks the tokens {' '.join(missing)}")
        tok = HFTokenizer.from_str(self._tok.to_str())
        tok.pre_tokenizer = _pre_tokenizer(True)
        return BPETokenizer(tok)

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size()

    def normalize(self, text: str) -> str:
        return self._tok.normalizer.normalize_str(text)

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch(list(texts))]

    def tokens(self, text: str) -> list[str]:
        return self._tok.encode(text).tokens

    def id_to_token(self, token_id: int) -> str:
        return self._tok.id_to_token(token_id) or UNK

    def decode(self, ids: Sequence[int]) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=True)

    def decode_batch(self, batch: Sequence[Sequence[int]]) -> list[str]:
        return self._tok.decode_batch([list(ids) for ids in batch], skip_special_tokens=True)
