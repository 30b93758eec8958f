"""The tokenizer of a pretrained encoder checkpoint (WordPiece for BERT), on the ``tokenizers`` library.

Reads ``tokenizer.json``, or builds BERT's WordPiece pipeline from ``vocab.txt`` and ``tokenizer_config.json``
(lower-casing, accent stripping) the way the original BERT tokenizer works. Batches come back padded, as tensors.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from tformer.errors import ModelFolderError
from tformer.files import read_json
from tformer.pretrained import resolve_pretrained

log = logging.getLogger("tformer")

TOKENIZER_FILE = "tokenizer.json"
VOCAB_FILE = "vocab.txt"
CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_FILE = "special_tokens_map.json"
BERT_SPECIAL = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
                "mask_token": "[MASK]"}
UNBOUNDED = 10**9  # tokenizer configs write a huge model_max_length when there is no limit


class BatchEncoding(dict):
    """Padded token ids for a batch of texts: a dict (``.keys()``, ``.items()``, ``batch["input_ids"]``) with
    attribute access (``batch.input_ids``), as Hugging Face's ``BatchEncoding``. Unpacks into a model call:
    ``model(**batch)``.

    Keys: ``input_ids`` (batch, seq); ``attention_mask`` (batch, seq), 1 = real token, 0 = padding;
    ``token_type_ids`` (batch, seq), 0 = first text, 1 = second text of a pair.
    """

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"BatchEncoding has no {key!r}; it holds {', '.join(self)}") from None

    def to(self, device: torch.device | str) -> BatchEncoding:
        return BatchEncoding({k: v.to(device) for k, v in self.items()})


TokenizedBatch = BatchEncoding  # the earlier name


class Tokenizer:
    """Text -> token ids for a pretrained encoder, with the special tokens ([CLS] ... [SEP]) its model expects."""

    def __init__(self, tokenizer: HFTokenizer, config: dict[str, Any] | None = None) -> None:
        self.config = dict(config or {})
        self._tok = tokenizer
        self._tok.no_padding()  # checkpoints may carry fixed padding/truncation settings; each call decides
        self._tok.no_truncation()
        pad_id = tokenizer.token_to_id(_token_text(self.config.get("pad_token", BERT_SPECIAL["pad_token"])))
        self.pad_id = 0 if pad_id is None else pad_id
        limit = self.config.get("model_max_length")
        self.model_max_length: int | None = limit if isinstance(limit, int) and limit < UNBOUNDED else None
        self._warned_truncation = False

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path) -> Tokenizer:
        """Load from a checkpoint folder (``tokenizer.json``, else ``vocab.txt``) or a short name (``"minilm"``)."""
        folder = resolve_pretrained(name_or_path)
        config = _read_json(folder / CONFIG_FILE)
        for key, value in _read_json(folder / SPECIAL_TOKENS_FILE).items():
            config.setdefault(key, value)
        if (folder / TOKENIZER_FILE).is_file():
            try:
                return cls(HFTokenizer.from_file(str(folder / TOKENIZER_FILE)), config)
            except Exception as err:  # tokenizers raises a bare Exception for a truncated or malformed file
                raise ModelFolderError(f"{folder / TOKENIZER_FILE}: not a valid tokenizer file ({err})") from None
        if (folder / VOCAB_FILE).is_file():
            return cls(wordpiece_from_vocab(folder / VOCAB_FILE, config), config)
        found = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
        raise ModelFolderError(f"{folder}: missing {TOKENIZER_FILE} or {VOCAB_FILE} (found: {found})")

    def save_pretrained(self, folder: str | Path) -> None:
        """Write ``tokenizer.json``, ``tokenizer_config.json``, ``special_tokens_map.json`` and, for WordPiece,
        ``vocab.txt``: enough for tformer and for ``transformers.AutoTokenizer``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self._tok.save(str(folder / TOKENIZER_FILE))
        config = dict(self.config)
        if self.model_max_length is not None:
            config["model_max_length"] = self.model_max_length
        special = {k: config[k] for k in BERT_SPECIAL if k in config}
        if isinstance(self._tok.model, WordPiece):
            config.setdefault("tokenizer_class", "BertTokenizer")
            vocab = sorted(self._tok.get_vocab(with_added_tokens=True).items(), key=lambda item: item[1])
            (folder / VOCAB_FILE).write_text("".join(token + "\n" for token, _ in vocab), encoding="utf-8")
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        (folder / SPECIAL_TOKENS_FILE).write_text(json.dumps(special, indent=2) + "\n", encoding="utf-8")

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    def __call__(
        self,
        texts: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        padding: bool | str = True,
        truncation: bool | str = True,
        max_length: int | None = None,
        return_tensors: str | None = "pt",
    ) -> BatchEncoding:
        """Tokenize one text or a batch (optionally of pairs) into padded tensors, as Hugging Face tokenizers do.

        Args:
            texts: a string or a list of strings.
            text_pair: second texts of sentence pairs (segment 1), one per text.
            padding: True or ``"longest"`` pads to the longest in the batch, ``"max_length"`` to ``max_length``;
                False or ``"do_not_pad"`` requires texts of one length.
            truncation: cut sequences longer than ``max_length`` (default: the checkpoint's ``model_max_length``);
                the first time this happens it is said once on stderr.
            max_length: the length limit for truncation and ``padding="max_length"``.
            return_tensors: ``"pt"`` (PyTorch tensors; also what None gives) or ``"np"`` (NumPy arrays).
        Returns:
            BatchEncoding of (batch, seq) tensors.
        """
        if return_tensors not in (None, "pt", "np"):
            raise ValueError(f"return_tensors must be 'pt' or 'np' (or None for tensors), got {return_tensors!r}")
        if padding not in (True, False, "longest", "max_length", "do_not_pad"):
            raise ValueError(f"padding must be True, False, 'longest', 'max_length' or 'do_not_pad', got {padding!r}")
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        if text_pair is not None:
            pairs = [text_pair] if isinstance(text_pair, str) else list(text_pair)
            if len(pairs) != len(texts):
                raise ValueError(f"text_pair has {len(pairs)} texts, expected one per text ({len(texts)})")
            inputs: list[Any] = list(zip(texts, pairs))
        else:
            inputs = texts
        limit = max_length if max_length is not None else self.model_max_length
        if truncation not in (False, "do_not_truncate") and limit is not None:
            self._tok.enable_truncation(limit)
        try:
            encodings = self._tok.encode_batch(inputs)
        finally:
            self._tok.no_truncation()
        self._say_truncated(sum(1 for e in encodings if e.overflowing), limit)
        batch = self._pad(encodings, padding not in (False, "do_not_pad") and padding, limit)
        return BatchEncoding({k: v.numpy() for k, v in batch.items()}) if return_tensors == "np" else batch

    def _pad(self, encodings: list[Any], padding: bool | str, limit: int | None) -> BatchEncoding:
        lengths = [len(e.ids) for e in encodings]
        if padding == "max_length" and limit is not None:
            width = max([limit, *lengths])
        elif padding or len(set(lengths)) <= 1:
            width = max(lengths, default=0)
        else:
            raise ValueError(f"texts have different lengths {sorted(set(lengths))}; use padding=True for a batch")
        ids = torch.full((len(encodings), width), self.pad_id, dtype=torch.long)  # (batch, seq)
        mask = torch.zeros(len(encodings), width, dtype=torch.long)
        types = torch.zeros(len(encodings), width, dtype=torch.long)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            ids[row, :n] = torch.tensor(e.ids, dtype=torch.long)
            mask[row, :n] = 1
            types[row, :n] = torch.tensor(e.type_ids, dtype=torch.long)
        return BatchEncoding(input_ids=ids, attention_mask=mask, token_type_ids=types)

    def _say_truncated(self, count: int, limit: int | None) -> None:
        if count and not self._warned_truncation:
            self._warned_truncation = True
            log.warning("tformer: %d text(s) longer than %s tokens were truncated (said once)", count, limit)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, with special tokens, not truncated or padded."""
        return [e.ids for e in self._tok.encode_batch(list(texts))]

    def encode(self, text: str) -> list[int]:
        """Token ids with special tokens, not truncated."""
        return self._tok.encode(text).ids

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids without special tokens, and each token's (start, end) character span in ``text``."""
        e = self._tok.encode(text, add_special_tokens=False)
        return e.ids, e.offsets

    def special_id(self, role: str) -> int:
        """The id of a special token by role: ``"cls_token"``, ``"sep_token"``, ``"pad_token"``, ..."""
        token = _token_text(self.config.get(role, BERT_SPECIAL.get(role, role)))
        token_id = self._tok.token_to_id(token)
        if token_id is None:
            raise ModelFolderError(f"the tokenizer has no {role} ({token!r}) in its vocabulary")
        return token_id

    def tokens(self, text: str) -> list[str]:
        return self._tok.encode(text).tokens

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=skip_special_tokens)


def wordpiece_from_vocab(vocab_file: Path, config: dict[str, Any]) -> HFTokenizer:
    """BERT's tokenizer from ``vocab.txt``: clean text, split Chinese characters, optionally lower-case and strip
    accents, split on whitespace and punctuation, WordPiece with ``##`` continuations, then [CLS] A [SEP] (B [SEP])."""
    special = {k: _token_text(config.get(k, v)) for k, v in BERT_SPECIAL.items()}
    tok = HFTokenizer(WordPiece.from_file(str(vocab_file), unk_token=special["unk_token"]))
    lowercase = bool(config.get("do_lower_case", True))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=bool(config.get("tokenize_chinese_chars", True)),
        strip_accents=config.get("strip_accents"), lowercase=lowercase,
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    cls, sep = special["cls_token"], special["sep_token"]
    ids = {}
    for token in (cls, sep):
        token_id = tok.token_to_id(token)
        if token_id is None:
            raise ModelFolderError(f"{vocab_file}: special token {token} is not in the vocabulary")
        ids[token] = token_id
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B:1 {sep}:1", special_tokens=list(ids.items())
    )
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.add_special_tokens([special[k] for k in BERT_SPECIAL])
    return tok


def _token_text(value: Any) -> str:
    return value.get("content", "") if isinstance(value, dict) else str(value)


def _read_json(path: Path) -> dict[str, Any]:
    return read_json(path) if path.is_file() else {}
