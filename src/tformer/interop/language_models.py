"""A causal language model and its tokenizer, found by one name: a GGUF file or short name ("smollm2"), a Hugging
Face Llama/GPT-2 folder, a folder written by ``CausalLM.save_pretrained`` (with a ``tokenizer.json``), a
``tformer train-lm`` run folder (its ``final/`` model), or a model bundled under ``models/`` ("shakespeare-char")."""

from __future__ import annotations

import os
from pathlib import Path

from tformer.interop.gguf import is_gguf_source
from tformer.interop.hf_causal import load_chat_tokenizer
from tformer.models.causal_lm import CausalLM, quantize_int4, quantize_int8
from tformer.text.chat_tokenizer import ChatTokenizer

MODELS_DIR = Path(__file__).resolve().parents[3] / "models"  # the repository's bundled models ($TFORMER_MODELS)
BUNDLED_LANGUAGE_MODELS = {"shakespeare-char": "shakespeare-char", "shakespeare": "shakespeare-char"}
DEFAULT_CHAT_MODEL = "smollm2"


def resolve_language_model(name_or_path: str | Path) -> str | Path:
    """The file, folder or short name ``CausalLM.from_pretrained`` should get for ``name_or_path``."""
    key = str(name_or_path).lower()
    path = Path(name_or_path).expanduser()
    if key in BUNDLED_LANGUAGE_MODELS and not path.exists():
        return Path(os.environ.get("TFORMER_MODELS", MODELS_DIR)) / BUNDLED_LANGUAGE_MODELS[key]
    if is_gguf_source(name_or_path):
        return name_or_path
    if path.is_dir() and not (path / "config.json").is_file() and (path / "final" / "config.json").is_file():
        return path / "final"  # a training run's folder
    return path


def load_language_model(name_or_path: str | Path, dtype: str = "float32") -> tuple[CausalLM, ChatTokenizer]:
    """``(model, tokenizer)`` in eval mode for any of the sources the module docstring lists. ``dtype``:
    "float32", "bfloat16", "int8" or "int4" (weights in 8 or 4 bits, products in bfloat16:
    ``tformer.models.causal_lm.quantize_int8`` / ``quantize_int4``)."""
    import torch

    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "int8": torch.float32, "int4": torch.float32}
    if dtype not in dtypes:
        raise ValueError(f"dtype must be one of {', '.join(dtypes)}, got {dtype!r}")
    source = resolve_language_model(name_or_path)
    model = CausalLM.from_pretrained(source, dtype=dtypes[dtype])
    quantize = {"int8": quantize_int8, "int4": quantize_int4}.get(dtype)
    return (quantize(model) if quantize else model), load_chat_tokenizer(source)
