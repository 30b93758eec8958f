"""Hugging Face Llama and GPT-2 checkpoint folders -> ``CausalLM``: the config and weight-name tables, and loading.

This is the one place where Hugging Face's decoder-only names (``hidden_size``, ``q_proj``, ``c_attn``) appear.
Importing this module registers the format behind ``CausalLM.from_pretrained`` (``tformer.models.formats``).
GPT-2 keeps its projections as ``Conv1D`` (in_features, out_features), the transpose of PyTorch's linear layers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer as HFTokenizer
from torch import Tensor

from tformer.errors import ConfigError, ModelFolderError
from tformer.interop.hf_bert import read_weights
from tformer.models.causal_lm import FAMILY, CausalLM, CausalLMConfig, empty_causal_lm
from tformer.models.formats import CheckpointFormat, register_checkpoint_format
from tformer.text.chat_tokenizer import ChatTokenizer

CONFIG_FILE = "config.json"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")

# CausalLMConfig field -> Hugging Face config key, per model_type.
LLAMA_CONFIG_KEYS = {
    "vocab_size": "vocab_size",
    "d_model": "hidden_size",
    "num_layers": "num_hidden_layers",
    "num_heads": "num_attention_heads",
    "num_kv_heads": "num_key_value_heads",
    "d_ff": "intermediate_size",
    "max_len": "max_position_embeddings",
    "norm_eps": "rms_norm_eps",
    "tie_embeddings": "tie_word_embeddings",
    "pad_id": "pad_token_id",
    "bos_id": "bos_token_id",
    "eos_id": "eos_token_id",
}
GPT2_CONFIG_KEYS = {
    "vocab_size": "vocab_size",
    "d_model": "n_embd",
    "num_layers": "n_layer",
    "num_heads": "n_head",
    "d_ff": "n_inner",
    "max_len": "n_positions",
    "norm_eps": "layer_norm_epsilon",
    "tie_embeddings": "tie_word_embeddings",
    "bos_id": "bos_token_id",
    "eos_id": "eos_token_id",
    "pad_id": "pad_token_id",
}
GPT2_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "relu": "relu"}

# Weight names: Hugging Face -> tformer. ``{i}`` is the layer index.
LLAMA_KEYS = {
    "model.embed_tokens.weight": "embed.weight",
    "model.norm.weight": "final_norm.weight",
    "lm_head.weight": "output.weight",
    "model.layers.{i}.input_layernorm.weight": "layers.{i}.attn_norm.weight",
    "model.layers.{i}.self_attn.o_proj.weight": "layers.{i}.self_attn.out_proj.weight",
    "model.layers.{i}.post_attention_layernorm.weight": "layers.{i}.ffn_norm.weight",
    "model.layers.{i}.mlp.down_proj.weight": "layers.{i}.ffn.down.weight",
}
LLAMA_FUSED = {  # tformer's fused tensor <- its Hugging Face parts, in row order
    "layers.{i}.self_attn.in_proj.weight": (
        "model.layers.{i}.self_attn.q_proj.weight", "model.layers.{i}.self_attn.k_proj.weight",
        "model.layers.{i}.self_attn.v_proj.weight",
    ),
    "layers.{i}.ffn.gate_up.weight": ("model.layers.{i}.mlp.gate_proj.weight", "model.layers.{i}.mlp.up_proj.weight"),
}
GPT2_KEYS = {
    "wte.weight": "embed.weight",
    "wpe.weight": "positions.weight",
    "ln_f.weight": "final_norm.weight",
    "ln_f.bias": "final_norm.bias",
    "lm_head.weight": "output.weight",
    "h.{i}.ln_1.weight": "layers.{i}.attn_norm.weight",
    "h.{i}.ln_1.bias": "layers.{i}.attn_norm.bias",
    "h.{i}.attn.c_attn.weight": "layers.{i}.self_attn.in_proj.weight",
    "h.{i}.attn.c_attn.bias": "layers.{i}.self_attn.in_proj.bias",
    "h.{i}.attn.c_proj.weight": "layers.{i}.self_attn.out_proj.weight",
    "h.{i}.attn.c_proj.bias": "layers.{i}.self_attn.out_proj.bias",
    "h.{i}.ln_2.weight": "layers.{i}.ffn_norm.weight",
    "h.{i}.ln_2.bias": "layers.{i}.ffn_norm.bias",
    "h.{i}.mlp.c_fc.weight": "layers.{i}.ffn.linear1.weight",
    "h.{i}.mlp.c_fc.bias": "layers.{i}.ffn.linear1.bias",
    "h.{i}.mlp.c_proj.weight": "layers.{i}.ffn.linear2.weight",
    "h.{i}.mlp.c_proj.bias": "layers.{i}.ffn.linear2.bias",
}
GPT2_CONV1D = re.compile(r"\.(c_attn|c_proj|c_fc)\.weight$")  # stored (in, out): transposed on load
GPT2_BUFFERS = re.compile(r"\.attn\.(bias|masked_bias)$")  # the causal-mask buffers of old checkpoints


def is_hf_folder(folder: Path) -> bool:
    """A folder whose config.json carries Hugging Face's ``model_type`` (tformer's own config does not)."""
    try:
        return "model_type" in json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False


def _fields(hf: dict[str, Any], keys: dict[str, str]) -> dict[str, Any]:
    fields = {ours: hf[theirs] for ours, theirs in keys.items() if hf.get(theirs) is not None}
    for name in ("bos_id", "eos_id", "pad_id"):  # some configs list several end tokens: the first is ours
        if isinstance(fields.get(name), list):
            fields[name] = fields[name][0]
    fields.setdefault("pad_id", fields.get("eos_id", 0))
    return fields


def llama_config_from_hf(hf: dict[str, Any], source: str) -> CausalLMConfig:
    if hf.get("hidden_act", "silu") != "silu":
        raise ConfigError(f"{source}: hidden_act {hf['hidden_act']!r} is not supported for Llama (only 'silu')")
    rope = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        raise ConfigError(f"{source}: rope scaling {rope.get('rope_type', rope.get('type'))!r} is not supported")
    d_model, heads = hf["hidden_size"], hf["num_attention_heads"]
    if hf.get("head_dim") not in (None, d_model // heads):
        raise ConfigError(f"{source}: head_dim {hf['head_dim']} differs from hidden_size / num_attention_heads")
    bias = (bool(hf.get("attention_bias", False)), bool(hf.get("mlp_bias", False)))
    if bias[0] != bias[1]:
        raise ConfigError(f"{source}: attention_bias={bias[0]} with mlp_bias={bias[1]} is not supported")
    fields = _fields(hf, LLAMA_CONFIG_KEYS)
    fields["rope_base"] = float(rope.get("rope_theta", hf.get("rope_theta", 10000.0)))
    return CausalLMConfig.llama(bias=bias[0], **fields)


def gpt2_config_from_hf(hf: dict[str, Any], source: str) -> CausalLMConfig:
    act = hf.get("activation_function", "gelu_new")
    if act not in GPT2_ACTIVATIONS:
        raise ConfigError(f"{source}: activation_function {act!r} is not supported ({sorted(GPT2_ACTIVATIONS)})")
    if hf.get("scale_attn_by_inverse_layer_idx") or hf.get("scale_attn_weights") is False:
        raise ConfigError(f"{source}: GPT-2 attention scaling other than 1/sqrt(head_dim) is not supported")
    fields = _fields(hf, GPT2_CONFIG_KEYS)
    fields.setdefault("d_ff", 4 * fields["d_model"])
    return CausalLMConfig(activation=GPT2_ACTIVATIONS[act], dropout=0.0, **fields)


CONFIG_READERS = {"llama": llama_config_from_hf, "gpt2": gpt2_config_from_hf}


def config_from_hf(hf: dict[str, Any], source: str = CONFIG_FILE) -> CausalLMConfig:
    """A ``CausalLMConfig`` from a Hugging Face config.json dict; other architectures are refused by name."""
    model_type = hf.get("model_type")
    if model_type not in CONFIG_READERS:
        raise ConfigError(
            f"{source}: model_type {model_type!r} is not supported (tformer loads: {', '.join(CONFIG_READERS)})"
        )
    try:
        return CONFIG_READERS[model_type](hf, source)
    except (KeyError, TypeError, ConfigError) as err:
        raise ConfigError(f"{source}: {err}") from None


def _expand(table: dict[str, Any], layers: int) -> dict[str, Any]:
    """A name table with ``{i}`` written out for every layer."""
    out = {}
    for theirs, ours in table.items():
        for i in range(layers) if "{i}" in theirs else [None]:
            key = theirs.format(i=i) if i is not None else theirs
            out[key] = ours.format(i=i) if isinstance(ours, str) else tuple(p.format(i=i) for p in ours)
    return out


def weights_from_hf(state: dict[str, Tensor], model_type: str, config: CausalLMConfig) -> dict[str, Tensor]:
    """Hugging Face names -> tformer state dict. Names the model has no place for are kept as they are (the
    loader reports them); a tied ``lm_head`` is dropped."""
    if model_type == "gpt2":
        state = {re.sub(r"^transformer\.", "", k): v for k, v in state.items() if not GPT2_BUFFERS.search(k)}
        state = {k: (v.t() if GPT2_CONV1D.search(k) else v) for k, v in state.items()}
        table, fused = _expand(GPT2_KEYS, config.num_layers), {}
    else:
        table, fused = _expand(LLAMA_KEYS, config.num_layers), _expand(LLAMA_FUSED, config.num_layers)
    if config.tie_embeddings:
        state = {k: v for k, v in state.items() if k != "lm_head.weight"}
    out = {table.get(k, k): v for k, v in state.items() if not any(k in parts for parts in fused.values())}
    for ours, parts in fused.items():
        present = [p for p in parts if p in state]
        if len(present) == len(parts):
            out[ours] = torch.cat([state[p] for p in parts])
    return out


def load_hf_causal(folder: str | Path, dtype: torch.dtype = torch.float32) -> CausalLM:
    """A ``CausalLM`` (eval mode) from a Hugging Face Llama or GPT-2 folder (config.json + safetensors)."""
    folder = Path(folder)
    weight_file = next((folder / n for n in WEIGHT_FILES if (folder / n).is_file()), None)
    if weight_file is None:
        found = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
        raise ModelFolderError(f"{folder}: missing {' or '.join(WEIGHT_FILES)} (found: {found})")
    hf = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    config = config_from_hf(hf, str(folder / CONFIG_FILE))
    model = empty_causal_lm(config)
    model.load_weights(weights_from_hf(read_weights(weight_file), hf["model_type"], config), source=str(weight_file))
    return model.to(dtype).eval()


def _load(cls: type[CausalLM], source: str | Path, dtype: torch.dtype = torch.float32) -> CausalLM:
    return load_hf_causal(source, dtype)


def _recognises(source: str | Path) -> bool:
    return is_hf_folder(Path(source))


register_checkpoint_format(FAMILY, CheckpointFormat("Hugging Face Llama/GPT-2 folder", _load, recognises=_recognises))


# ------------------------------------------------------------------------------------------------ tokenizers

TOKENIZER_FILE, TOKENIZER_CONFIG = "tokenizer.json", "tokenizer_config.json"


def load_hf_tokenizer(folder: str | Path) -> ChatTokenizer:
    """The tokenizer of a Hugging Face folder (``tokenizer.json``) with the chat template and special tokens of its
    ``tokenizer_config.json`` (or ``chat_template.jinja``)."""
    folder = Path(folder)
    if not (folder / TOKENIZER_FILE).is_file():
        raise ModelFolderError(f"{folder}: missing {TOKENIZER_FILE} (the tokenizer in the `tokenizers` format)")
    tokenizer = HFTokenizer.from_file(str(folder / TOKENIZER_FILE))
    settings: dict[str, Any] = {}
    if (folder / TOKENIZER_CONFIG).is_file():
        settings = json.loads((folder / TOKENIZER_CONFIG).read_text(encoding="utf-8"))
    template = settings.get("chat_template")
    if (folder / "chat_template.jinja").is_file():
        template = (folder / "chat_template.jinja").read_text(encoding="utf-8")

    def token_id(role: str) -> int | None:
        token = settings.get(f"{role}_token")
        token = token.get("content") if isinstance(token, dict) else token
        return tokenizer.token_to_id(token) if isinstance(token, str) else None

    return ChatTokenizer(tokenizer, template if isinstance(template, str) else None,
                         {role: token_id(role) for role in ("bos", "eos", "pad")})


def load_chat_tokenizer(name_or_path: str | Path) -> ChatTokenizer:
    """The tokenizer (and chat template) that goes with ``CausalLM.from_pretrained(name_or_path)``: from a GGUF
    file or short name, or a Hugging Face folder."""
    from tformer.interop.gguf import is_gguf_source, load_gguf_tokenizer

    if is_gguf_source(name_or_path):
        return load_gguf_tokenizer(name_or_path)
    return load_hf_tokenizer(name_or_path)
