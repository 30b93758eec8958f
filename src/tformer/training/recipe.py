"""Training recipes: one TOML file with [model], [data], [tokenizer] and [train] tables, each a dataclass."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tformer.errors import ConfigError
from tformer.models.config import JsonConfig, require_positive, require_probability

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

T = TypeVar("T", bound=JsonConfig)


@dataclass
class DataConfig(JsonConfig):
    root: str = ""  # corpora folder; empty = $TFORMER_DATA or ../shared/data
    multi30k_upsample: int = 1  # repeat Multi30k train this many times per epoch
    tatoeba_max_pairs: int = 0  # Tatoeba train pairs used (a seeded sample); 0 = none, -1 = all
    max_tokens_per_sentence: int = 128  # longer training pairs (in subwords) are skipped
    name_substitutions: int = 0  # extra Tatoeba pairs with a shared name replaced by a made-up one (see data/names)
    substituted_names: tuple[str, ...] = ("Tom", "Mary")  # names eligible for substitution
    name_vowel_share: float = 0.0  # share of made-up names that start with a vowel (0 = the original generator)
    place_substitutions: int = 0  # extra Tatoeba pairs with a city replaced by another place (see data/augment)
    number_pairs: int = 0  # extra template pairs with prices, decimals, counts, times and dates (see data/augment)
    wordlike_name_substitutions: int = 0  # extra pairs with a name that begins like a German word (see data/names)
    mixed_number_pairs: int = 0  # extra pairs with years, dates with years or times, decimals, number words

    def __post_init__(self) -> None:
        require_positive(self, "multi30k_upsample", "max_tokens_per_sentence")
        require_probability(self, "name_vowel_share")
        self.substituted_names = tuple(self.substituted_names)
        for name in ("name_substitutions", "place_substitutions", "number_pairs", "wordlike_name_substitutions",
                     "mixed_number_pairs"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}")


@dataclass
class TokenizerConfig(JsonConfig):
    vocab_size: int = 8000
    min_frequency: int = 2
    # every digit a token of its own; with train.init_from, the starting model's BPE is switched to split digits
    split_digits: bool = False

    def __post_init__(self) -> None:
        require_positive(self, "vocab_size", "min_frequency")


@dataclass
class TrainConfig(JsonConfig):
    seed: int = 1
    max_tokens: int = 4096  # per batch, source or target side, including padding
    accumulate: int = 1  # gradient accumulation steps per update
    peak_lr: float = 1e-3
    warmup_steps: int = 1000
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.98)
    clip_norm: float = 1.0
    label_smoothing: float = 0.1
    epochs: int = 10
    max_steps: int = 0  # 0 = no limit
    max_minutes: float = 0.0  # stop after this wall time (0 = no limit); the run still evaluates and averages
    save_every_minutes: float = 10.0  # also checkpoint after this much training time (0 = off): --resume has something
    eval_every: int = 0  # updates between evaluations; 0 = at each epoch end
    eval_sentences: int = 0  # validation sentences decoded for BLEU (0 = all)
    keep_last: int = 5  # checkpoints kept for resuming and averaging
    average_last: int = 5  # average the last K checkpoints at the end (0 = off)
    patience: int = 0  # stop after this many evaluations without a better BLEU (0 = off)
    bf16: bool = False
    threads: int = 0  # torch threads; 0 = torch's default
    skip_nonfinite: bool = False  # skip an update with a non-finite loss instead of stopping
    init_from: str = ""  # a model folder (config, weights, tokenizer) to start from instead of random weights
    device: str = "auto"  # "auto" (CUDA when available), "cuda" or "cpu"
    ddp_timeout_s: int = 600  # a collective waiting longer than this fails the run instead of hanging

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)  # type: ignore[assignment]
        require_positive(self, "max_tokens", "accumulate", "warmup_steps", "epochs")
        require_probability(self, "label_smoothing")
        if not self.peak_lr > 0:
            raise ConfigError(f"peak_lr must be positive, got {self.peak_lr!r}")
        if not self.save_every_minutes >= 0:
            raise ConfigError(f"save_every_minutes must be >= 0 (0 = off), got {self.save_every_minutes!r}")


@dataclass
class Recipe(JsonConfig):
    model: dict[str, Any] = field(default_factory=dict)  # TransformerConfig fields (vocab sizes come from BPE)
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        unknown = sorted(set(data) - {"model", "data", "tokenizer", "train"})
        if unknown:
            raise ConfigError(f"recipe: unknown table(s) {', '.join(unknown)}")
        return cls(
            model=dict(data.get("model", {})),
            data=DataConfig.from_dict(data.get("data", {})),
            tokenizer=TokenizerConfig.from_dict(data.get("tokenizer", {})),
            train=TrainConfig.from_dict(data.get("train", {})),
        )

    @classmethod
    def from_file(cls, path: str | Path) -> Recipe:
        return recipe_from_file(cls, path)


def recipe_from_file(cls: type[T], path: str | Path) -> T:
    """A recipe of class ``cls`` read from a TOML file, or a JSON one (by suffix); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe file not found: {path}")
    if path.suffix == ".json":
        return cls.from_json(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML ({err})") from None
    return cls.from_dict(data)
