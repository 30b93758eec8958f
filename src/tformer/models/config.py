"""Configuration dataclasses that validate themselves and round-trip to JSON."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tformer.errors import ConfigError
from tformer.files import read_json, write_text_atomic

T = TypeVar("T", bound="JsonConfig")


class JsonConfig:
    """Mixin: ``to_dict``/``from_dict``, ``to_json``/``from_json`` (a JSON string or a file path)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")
        return cls(**data)

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        if path is not None:
            write_text_atomic(path, text + "\n")
        return text

    @classmethod
    def from_json(cls: type[T], source: str | Path) -> T:
        """Parse a JSON string, or read a JSON file when ``source`` is a path."""
        text = str(source)
        if text.lstrip().startswith("{"):
            return cls.from_dict(json.loads(text))
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            return cls.from_dict(read_json(path))
        except (TypeError, ValueError) as err:  # a field of the wrong kind or out of range
            raise ConfigError(f"{path}: {err}") from None


def require_positive(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def require_probability(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise ConfigError(f"{name} must be in [0, 1), got {value!r}")


@dataclass
class TransformerConfig(JsonConfig):
    """The encoder-decoder Transformer. Defaults are the paper's base model (section 3, Table 3)."""

    src_vocab_size: int = 37000
    tgt_vocab_size: int = 37000
    d_model: int = 512
    num_heads: int = 8
    num_encoder_layers: int = 6
    num_decoder_layers: int = 6
    d_ff: int = 2048
    dropout: float = 0.1
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    activation: str = "relu"
    max_len: int = 512
    share_embeddings: bool = True
    tie_output: bool = True
    norm_first: bool = False
    learned_positions: bool = False
    norm_eps: float = 1e-5
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    unk_id: int = 3

    def __post_init__(self) -> None:
        require_positive(
            self, "src_vocab_size", "tgt_vocab_size", "d_model", "num_heads",
            "num_encoder_layers", "num_decoder_layers", "d_ff", "max_len",
        )
        require_probability(self, "dropout", "attention_dropout", "activation_dropout")
        if self.d_model % self.num_heads != 0:
            raise ConfigError(
                f"d_model must be divisible by num_heads, got d_model={self.d_model}, num_heads={self.num_heads}"
            )
        if self.activation not in ("relu", "gelu"):
            raise ConfigError(f"activation must be 'relu' or 'gelu', got {self.activation!r}")
        if self.share_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ConfigError(
                "share_embeddings needs one joint vocabulary, got "
                f"src_vocab_size={self.src_vocab_size}, tgt_vocab_size={self.tgt_vocab_size}"
            )
        for name in ("pad_id", "bos_id", "eos_id", "unk_id"):
            value = getattr(self, name)
            if not 0 <= value < min(self.src_vocab_size, self.tgt_vocab_size):
                raise ConfigError(f"{name} must be a valid token id, got {value!r}")
