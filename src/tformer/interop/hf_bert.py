"""Hugging Face BERT checkpoints <-> tformer's BERT: the config and weight-name tables, loading and saving.

This is the one place where Hugging Face's names (``hidden_size``, ``LayerNorm``, ``attention.self.query``) appear.
A folder saved here loads in ``transformers`` (``AutoModel``, ``AutoModelForSequenceClassification``) and back.
Importing this module registers it as the format behind ``BertModel.from_pretrained``/``save_pretrained`` (and the
heads'); ``import tformer`` does that.
"""

from __future__ import annotations

import json
import logging
import pickle
import re
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from tformer.errors import ConfigError, ModelFolderError
from tformer.files import read_json, verify_checksums
from tformer.models import bert_qa
from tformer.models.bert import FAMILY, BertConfig, BertForSequenceClassification, BertModel
from tformer.models.bert_qa import BertForQuestionAnswering
from tformer.models.formats import CheckpointFormat, register_checkpoint_format
from tformer.pretrained import resolve_pretrained

log = logging.getLogger("tformer")

CONFIG_FILE = "config.json"
WEIGHT_FILES = (
    "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"
)

# BertConfig field -> Hugging Face config key.
CONFIG_KEYS = {
    "vocab_size": "vocab_size",
    "d_model": "hidden_size",
    "num_layers": "num_hidden_layers",
    "num_heads": "num_attention_heads",
    "d_ff": "intermediate_size",
    "max_len": "max_position_embeddings",
    "num_segments": "type_vocab_size",
    "dropout": "hidden_dropout_prob",
    "attention_dropout": "attention_probs_dropout_prob",
    "activation": "hidden_act",
    "norm_eps": "layer_norm_eps",
    "init_std": "initializer_range",
    "pad_id": "pad_token_id",
    "classifier_dropout": "classifier_dropout",
}
# Hugging Face ``hidden_act`` -> tformer activation (the first spelling is the one written back).
ACTIVATIONS_FROM_HF = {"gelu": "gelu", "relu": "relu", "gelu_pytorch_tanh": "gelu_tanh", "gelu_new": "gelu_tanh"}
ACTIVATIONS_TO_HF = {ours: theirs for theirs, ours in reversed(ACTIVATIONS_FROM_HF.items())}

# Weight names outside the layers: Hugging Face -> tformer (each with .weight/.bias, or as given).
EMBEDDING_KEYS = {
    "embeddings.word_embeddings.weight": "embeddings.tokens.weight",
    "embeddings.position_embeddings.weight": "embeddings.positions.table",
    "embeddings.token_type_embeddings.weight": "embeddings.segments.weight",
    "embeddings.LayerNorm.weight": "embeddings.norm.weight",
    "embeddings.LayerNorm.bias": "embeddings.norm.bias",
    "pooler.dense.weight": "pooler.linear.weight",
    "pooler.dense.bias": "pooler.linear.bias",
}
# Inside layer i: Hugging Face ``encoder.layer.{i}.<key>`` -> tformer ``encoder.layers.{i}.<value>``.
LAYER_KEYS = {
    "attention.output.dense": "self_attn.out_proj",
    "attention.output.LayerNorm": "self_attn_norm.norm",
    "intermediate.dense": "ffn.linear1",
    "output.dense": "ffn.linear2",
    "output.LayerNorm": "ffn_norm.norm",
}
# Hugging Face keeps three projections; tformer one fused ``in_proj`` whose rows are [query; key; value].
QKV_KEYS = ("attention.self.query", "attention.self.key", "attention.self.value")
FUSED_QKV = "self_attn.in_proj"
# Buffers some checkpoints carry that are not weights.
IGNORED = re.compile(r"(^|\.)embeddings\.(position_ids|token_type_ids)$")

HF_LAYER = re.compile(r"^encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$")
OUR_LAYER = re.compile(r"^encoder\.layers\.(\d+)\.(.+)\.(weight|bias)$")
_EMBEDDING_KEYS_BACK = {ours: theirs for theirs, ours in EMBEDDING_KEYS.items()}
_LAYER_KEYS_BACK = {ours: theirs for theirs, ours in LAYER_KEYS.items()}

M = TypeVar("M", BertModel, BertForSequenceClassification)


# ----------------------------------------------------------------------------------------------- config


def config_from_hf(hf: dict[str, Any], source: str = "config.json") -> BertConfig:
    """A ``BertConfig`` from a Hugging Face ``config.json`` dict; other architectures are refused by name."""
    model_type = hf.get("model_type")
    architectures = hf.get("architectures") or []
    if model_type != "bert" and not (model_type is None and all(a.startswith("Bert") for a in architectures)):
        raise ConfigError(
            f"{source}: model_type {model_type!r} ({', '.join(architectures) or 'no architectures'}) is not "
            "supported; tformer loads BERT encoders (model_type 'bert')"
        )
    if hf.get("is_decoder") or hf.get("add_cross_attention"):
        raise ConfigError(f"{source}: BERT as a decoder (is_decoder, add_cross_attention) is not supported")
    position_type = hf.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        raise ConfigError(f"{source}: position_embedding_type {position_type!r} is not supported (only 'absolute')")
    act = hf.get("hidden_act", "gelu")
    if act not in ACTIVATIONS_FROM_HF:
        raise ConfigError(f"{source}: hidden_act {act!r} is not supported (one of {sorted(ACTIVATIONS_FROM_HF)})")
    fields = {ours: hf[theirs] for ours, theirs in CONFIG_KEYS.items() if hf.get(theirs) is not None}
    fields["activation"] = ACTIVATIONS_FROM_HF[act]
    if hf.get("id2label"):
        id2label = {int(k): v for k, v in hf["id2label"].items()}
        fields["labels"] = [str(id2label[i]) for i in range(len(id2label))]
    try:
        return BertConfig(**fields)
    except (KeyError, TypeError, ConfigError) as err:
        raise ConfigError(f"{source}: {err}") from None


def config_to_hf(config: BertConfig, architecture: str) -> dict[str, Any]:
    """The Hugging Face ``config.json`` dict for ``config`` (``architecture``: e.g. ``"BertModel"``)."""
    hf: dict[str, Any] = {"architectures": [architecture], "model_type": "bert"}
    for ours, theirs in CONFIG_KEYS.items():
        hf[theirs] = getattr(config, ours)
    hf["hidden_act"] = ACTIVATIONS_TO_HF[config.activation]
    hf["position_embedding_type"] = "absolute"
    if config.labels:
        hf["id2label"] = {str(i): name for i, name in enumerate(config.labels)}
        hf["label2id"] = {name: i for i, name in enumerate(config.labels)}
        hf["problem_type"] = "single_label_classification"
    return hf


# ---------------------------------------------------------------------------------------------- weights


def weights_to_hf(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """tformer state dict -> Hugging Face names; the fused ``in_proj`` is split into query, key and value."""
    out = {}
    for name, tensor in state.items():
        prefix = "bert." if name.startswith("bert.") else ""
        rest = name[len(prefix):]
        layer = OUR_LAYER.match(rest)
        if layer and layer[2] == FUSED_QKV:
            for part, chunk in zip(QKV_KEYS, tensor.chunk(3, dim=0)):
                out[f"{prefix}encoder.layer.{layer[1]}.{part}.{layer[3]}"] = chunk
        elif layer and layer[2] in _LAYER_KEYS_BACK:
            out[f"{prefix}encoder.layer.{layer[1]}.{_LAYER_KEYS_BACK[layer[2]]}.{layer[3]}"] = tensor
        else:
            out[prefix + _EMBEDDING_KEYS_BACK.get(rest, rest)] = tensor
    return out


def weights_from_hf(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Hugging Face names -> tformer state dict; query, key and value are concatenated into ``in_proj``.

    Expects a complete set of names (``load_pretrained`` checks that first).
    """
    out, qkv = {}, {}
    for name, tensor in state.items():
        prefix = "bert." if name.startswith("bert.") else ""
        rest = name[len(prefix):]
        layer = HF_LAYER.match(rest)
        if layer and layer[2] in QKV_KEYS:
            qkv.setdefault((prefix, layer[1], layer[3]), {})[layer[2]] = tensor
        elif layer and layer[2] in LAYER_KEYS:
            out[f"{prefix}encoder.layers.{layer[1]}.{LAYER_KEYS[layer[2]]}.{layer[3]}"] = tensor
        else:
            out[prefix + EMBEDDING_KEYS.get(rest, rest)] = tensor
    for (prefix, index, kind), parts in qkv.items():
        out[f"{prefix}encoder.layers.{index}.{FUSED_QKV}.{kind}"] = torch.cat([parts[k] for k in QKV_KEYS], dim=0)
    return out


def normalise_checkpoint_names(state: dict[str, Tensor], with_prefix: bool) -> dict[str, Tensor]:
    """Old ``LayerNorm.gamma``/``beta`` names become ``weight``/``bias``; buffers are dropped; the ``bert.`` prefix
    is added (loading a bare encoder under a head) or removed (loading an encoder out of a model with a head)."""
    out = {}
    has_prefix = any(name.startswith("bert.") for name in state)
    for name, tensor in state.items():
        if IGNORED.search(name):
            continue
        name = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", name))
        if with_prefix and not has_prefix and not name.startswith(("classifier.", "cls.")):
            name = "bert." + name
        elif not with_prefix and name.startswith("bert."):
            name = name[len("bert."):]
        out[name] = tensor
    return out


# ------------------------------------------------------------------------------------------------ files


def read_checkpoint(folder: Path) -> tuple[dict[str, Any], dict[str, Tensor], Path]:
    """The config dict and weights of a checkpoint folder, and the weight file's path (for messages)."""
    weight_file = next((folder / n for n in WEIGHT_FILES if (folder / n).is_file()), None)
    missing = ([] if (folder / CONFIG_FILE).is_file() else [CONFIG_FILE])
    missing += [] if weight_file else [" or ".join(WEIGHT_FILES)]
    if missing:
        found = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
        raise ModelFolderError(f"{folder}: missing {'; '.join(missing)} (found: {found})")
    verify_checksums(folder)  # fine-tuned best/ folders carry checksums.json
    return read_json(folder / CONFIG_FILE), read_weights(weight_file), weight_file


def read_weights(path: Path) -> dict[str, Tensor]:
    """A safetensors file, a PyTorch ``.bin`` (loaded with ``weights_only=True``), or a sharded index of either."""
    if path.name.endswith(".index.json"):
        return {k: v for shard in shard_files(path) for k, v in read_weights(shard).items()}
    if not path.is_file():
        raise ModelFolderError(f"{path}: weight file is missing")
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # weights_only refused an object that is not a tensor: it could run code
        raise ModelFolderError(
            f"{path}: refused: tformer does not load pickled weights that hold anything but tensors (unpickling "
            "can run code). If you trust the file, convert it to safetensors once: python -c \"import torch; "
            "from safetensors.torch import save_file; save_file(torch.load('pytorch_model.bin', "
            "weights_only=False), 'model.safetensors')\" in its folder, then remove pytorch_model.bin"
        ) from None
    except Exception as err:  # safetensors and torch raise assorted types for truncated or malformed files
        reason = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ModelFolderError(f"{path}: cannot read weights ({type(err).__name__}: {reason})") from None


def shard_files(index: Path) -> list[Path]:
    """The weight files a sharded checkpoint's index (``*.index.json``) names in its ``weight_map``."""
    weight_map = read_json(index).get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise ModelFolderError(f"{index}: no weight_map (the table naming the shard file of each weight)")
    shards = []
    for name in sorted(set(weight_map.values())):
        shard = index.parent / str(name)
        if not isinstance(name, str) or name.endswith(".index.json") or shard.parent != index.parent:
            raise ModelFolderError(f"{index}: weight_map names {name!r}; expected weight files (.safetensors or "
                                   ".bin) beside the index")
        shards.append(shard)
    return shards


def _names(names: list[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


# --------------------------------------------------------------------------------------- load and save


def load_pretrained(
    cls: type[M], name_or_path: str | Path, labels: list[str] | None = None, strict: bool = True
) -> M:
    """Build ``cls`` from a Hugging Face checkpoint folder (or short name); return it in eval mode.

    Missing weights raise (or, with ``strict=False``, keep their fresh initialisation); weights the model has no
    place for are ignored; either is said in one line naming them. A classifier head absent from the checkpoint
    (an encoder checkpoint with ``labels`` given) is initialised fresh.
    """
    folder = resolve_pretrained(name_or_path)
    hf_config, checkpoint, weight_file = read_checkpoint(folder)
    config = config_from_hf(hf_config, str(folder / CONFIG_FILE))
    is_classifier = cls is BertForSequenceClassification
    if is_classifier and labels is not None:
        config.labels = [str(label) for label in labels]
        BertConfig.__post_init__(config)
    elif is_classifier and not config.labels:
        raise ConfigError(f"{folder} has no classification labels (id2label); give labels to put a new head on it")
    model = cls(config)
    expected = weights_to_hf(model.state_dict())
    checkpoint = normalise_checkpoint_names(checkpoint, with_prefix=is_classifier)
    new_head = sorted(k for k in expected if k.startswith("classifier.") and k not in checkpoint)
    missing = sorted(k for k in expected if k not in checkpoint and k not in new_head)
    unexpected = sorted(k for k in checkpoint if k not in expected)
    for name in sorted(set(expected) & set(checkpoint)):
        if checkpoint[name].shape != expected[name].shape:
            raise ModelFolderError(
                f"{weight_file}: {name} has shape {tuple(checkpoint[name].shape)}, the model (from "
                f"{CONFIG_FILE}) expects {tuple(expected[name].shape)}"
            )
    if missing and strict:
        raise ModelFolderError(f"{weight_file}: {len(missing)} weight(s) missing: {_names(missing)}")
    if missing:
        log.warning("tformer: %d weight(s) missing from %s, left at random initialisation: %s",
                    len(missing), weight_file, _names(missing))
    if unexpected:
        log.warning("tformer: %d weight(s) in %s not used by %s: %s",
                    len(unexpected), weight_file, cls.__name__, _names(unexpected))
    if new_head:
        log.info("tformer: new classification head for labels %s: %s", config.labels, _names(new_head))
    complete = {name: checkpoint.get(name, tensor) for name, tensor in expected.items()}
    model.load_state_dict(weights_from_hf(complete), strict=True)
    return model.eval()


def save_pretrained(model: nn.Module, folder: str | Path) -> None:
    """Write ``config.json`` and ``model.safetensors`` with Hugging Face names into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    hf_config = config_to_hf(model.config, type(model).__name__)
    (folder / CONFIG_FILE).write_text(json.dumps(hf_config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    # clone: the query, key and value chunks of ``in_proj`` share memory, which safetensors refuses
    tensors = {k: v.detach().cpu().clone() for k, v in weights_to_hf(model.state_dict()).items()}
    save_file(tensors, str(folder / WEIGHT_FILES[0]), metadata={"format": "pt"})


# ----------------------------------------------------------------------------------- question answering


def load_question_answering(
    cls: type[BertForQuestionAnswering], folder: Path, strict: bool = True
) -> BertForQuestionAnswering:
    """A Hugging Face BERT checkpoint folder as a ``BertForQuestionAnswering`` in eval mode.

    The span head and the pooler may be absent (a bare encoder gets a fresh head); any other missing weight
    raises, or with ``strict=False`` keeps its random initialisation; either is said in one line.
    """
    hf_config, checkpoint, weight_file = read_checkpoint(folder)
    model = cls(config_from_hf(hf_config, str(folder / CONFIG_FILE)))
    expected = weights_to_hf(model.state_dict())
    checkpoint = normalise_checkpoint_names(checkpoint, with_prefix=True)
    checkpoint = {("qa_outputs." + k[len("bert.qa_outputs."):] if k.startswith("bert.qa_outputs.") else k): v
                  for k, v in checkpoint.items()}
    for name in sorted(set(expected) & set(checkpoint)):
        if checkpoint[name].shape != expected[name].shape:
            raise ModelFolderError(f"{weight_file}: {name} has shape {tuple(checkpoint[name].shape)}, the model "
                                   f"expects {tuple(expected[name].shape)}")
    absent = sorted(k for k in expected if k not in checkpoint)
    missing = [k for k in absent if not k.startswith(bert_qa.OPTIONAL_PREFIXES)]
    if missing and strict:
        raise ModelFolderError(f"{weight_file}: {len(missing)} weight(s) missing: {', '.join(missing[:4])}")
    if missing:
        log.warning("tformer: %d weight(s) missing from %s, left at random initialisation: %s",
                    len(missing), weight_file, ", ".join(missing[:4]))
    if any(k.startswith("qa_outputs.") for k in absent):
        log.info("tformer: %s has no span head; a new one is initialised (fine-tune it before use)", folder)
    complete = {name: checkpoint.get(name, tensor) for name, tensor in expected.items()}
    model.load_state_dict(weights_from_hf(complete), strict=True)
    return model.eval()


def save_question_answering(model: nn.Module, folder: str | Path) -> None:
    """Write a folder that ``transformers.AutoModelForQuestionAnswering`` loads: without the pooler, which the span
    head does not use and Hugging Face's QA model does not have."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    hf_config = config_to_hf(model.config, type(model).__name__)
    (folder / CONFIG_FILE).write_text(json.dumps(hf_config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("bert.pooler.")}
    # clone: the query, key and value chunks of ``in_proj`` share memory, which safetensors refuses
    tensors = {k: v.detach().cpu().clone().contiguous() for k, v in weights_to_hf(state).items()}
    save_file(tensors, str(folder / WEIGHT_FILES[0]), metadata={"format": "pt"})


register_checkpoint_format(FAMILY, CheckpointFormat("Hugging Face BERT folder", load_pretrained, save_pretrained))
register_checkpoint_format(
    bert_qa.FAMILY,
    CheckpointFormat("Hugging Face BERT question-answering folder", load_question_answering, save_question_answering),
)
