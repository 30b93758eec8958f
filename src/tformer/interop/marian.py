"""Hugging Face Marian (``MarianMTModel``) export and import for tformer translation models.

Marian is the same post-norm Transformer with two differences of layout: separate Q/K/V projections where ours are
one fused ``in_proj``, and a sinusoid table with all sines first and all cosines after (``[sin | cos]``) where ours
interleaves them (sin, cos, sin, cos, ...). Marian recomputes its table when it loads a folder, so the export
permutes the hidden dimensions of every weight that reads or writes the residual stream: the permuted model
computes the same function, and the import applies the inverse permutation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from tformer.errors import ConfigError
from tformer.models.config import TransformerConfig
from tformer.models.seq2seq import Seq2SeqTransformer

if TYPE_CHECKING:
    from transformers import MarianMTModel

    from tformer.decoding.translator import Translator

# nn.LayerNorm inside MarianMTModel always uses torch's default epsilon.
MARIAN_NORM_EPS = 1e-5

# How a weight touches the residual stream (d_model), which decides the axis the permutation applies to.
READS = "reads"  # Linear whose input is the residual stream: permute weight columns
WRITES = "writes"  # Linear whose output is the residual stream: permute weight rows and bias
NORM = "norm"  # LayerNorm over the residual stream: permute weight and bias
EMBED = "embed"  # (vocab, d_model) table: permute columns
OTHER = "other"  # no hidden axis (the logits bias)

# Per layer: tformer sub-module -> (Marian sub-module, kind). Attention in_proj is split separately.
SUBLAYER_KEYS = {
    "self_attn.out_proj": ("self_attn.out_proj", WRITES),
    "self_attn_norm.norm": ("self_attn_layer_norm", NORM),
    "ffn.linear1": ("fc1", READS),
    "ffn.linear2": ("fc2", WRITES),
    "ffn_norm.norm": ("final_layer_norm", NORM),
}
CROSS_ATTENTION_KEYS = {
    "cross_attn.out_proj": ("encoder_attn.out_proj", WRITES),
    "cross_attn_norm.norm": ("encoder_attn_layer_norm", NORM),
}
ATTENTION_KEYS = {"self_attn": "self_attn", "cross_attn": "encoder_attn"}
QKV = ("q_proj", "k_proj", "v_proj")  # the thirds of in_proj, in row order


@dataclass(frozen=True)
class KeyPair:
    """One tensor's name in tformer's state dict and in Marian's; ``part`` names a third of a fused in_proj."""

    ours: str
    theirs: str
    kind: str
    part: int | None = None


def hidden_order(d_model: int) -> Tensor:
    """Marian's hidden dimension m holds tformer's dimension ``order[m]``: the even (sine) dims, then the odd."""
    return torch.cat([torch.arange(0, d_model, 2), torch.arange(1, d_model, 2)])


def key_pairs(config: TransformerConfig) -> list[KeyPair]:
    """Every tformer tensor (tied aliases once) with its Marian name."""
    pairs = [KeyPair("output.bias", "final_logits_bias", OTHER)]
    if config.share_embeddings:
        pairs.append(KeyPair("src_embed.weight", "model.shared.weight", EMBED))
    else:
        pairs.append(KeyPair("src_embed.weight", "model.encoder.embed_tokens.weight", EMBED))
        pairs.append(KeyPair("tgt_embed.weight", "model.decoder.embed_tokens.weight", EMBED))
    if not config.tie_output:
        pairs.append(KeyPair("output.weight", "lm_head.weight", EMBED))
    stacks = [
        ("encoder", config.num_encoder_layers, ("self_attn",), SUBLAYER_KEYS),
        ("decoder", config.num_decoder_layers, ("self_attn", "cross_attn"), {**SUBLAYER_KEYS, **CROSS_ATTENTION_KEYS}),
    ]
    for stack, num_layers, attentions, sublayers in stacks:
        for i in range(num_layers):
            ours, theirs = f"{stack}.layers.{i}.", f"model.{stack}.layers.{i}."
            for name, (marian_name, kind) in sublayers.items():
                for param in ("weight", "bias"):
                    pairs.append(KeyPair(f"{ours}{name}.{param}", f"{theirs}{marian_name}.{param}", kind))
            for attention in attentions:
                for part, proj in enumerate(QKV):
                    for param in ("weight", "bias"):
                        pairs.append(KeyPair(f"{ours}{attention}.in_proj.{param}",
                                             f"{theirs}{ATTENTION_KEYS[attention]}.{proj}.{param}", READS, part))
    return pairs


def permute_hidden(tensor: Tensor, kind: str, param: str, order: Tensor) -> Tensor:
    """Reorder the residual-stream axis of one tensor; ``param`` is "weight" or "bias"."""
    if kind in (EMBED, READS):
        return tensor[:, order] if param == "weight" else tensor
    if kind in (WRITES, NORM):
        return tensor[order]
    return tensor


def marian_config(config: TransformerConfig) -> dict:
    """``MarianConfig`` fields for a tformer config; raises ``ConfigError`` for what Marian cannot express."""
    problems = []
    if config.norm_first:
        problems.append("norm_first=True (Marian is post-norm)")
    if config.learned_positions:
        problems.append("learned_positions=True (Marian uses fixed sinusoids)")
    if config.norm_eps != MARIAN_NORM_EPS:
        problems.append(f"norm_eps={config.norm_eps} (Marian's LayerNorm uses {MARIAN_NORM_EPS})")
    if problems:
        raise ConfigError("cannot export to Hugging Face Marian: " + "; ".join(problems))
    return dict(
        vocab_size=config.src_vocab_size, decoder_vocab_size=config.tgt_vocab_size, d_model=config.d_model,
        encoder_layers=config.num_encoder_layers, decoder_layers=config.num_decoder_layers,
        encoder_attention_heads=config.num_heads, decoder_attention_heads=config.num_heads,
        encoder_ffn_dim=config.d_ff, decoder_ffn_dim=config.d_ff, activation_function=config.activation,
        dropout=config.dropout, attention_dropout=config.attention_dropout,
        activation_dropout=config.activation_dropout, max_position_embeddings=config.max_len,
        scale_embedding=True, share_encoder_decoder_embeddings=config.share_embeddings,
        tie_word_embeddings=config.tie_output, pad_token_id=config.pad_id, bos_token_id=config.bos_id,
        eos_token_id=config.eos_id, decoder_start_token_id=config.bos_id, forced_eos_token_id=None,
    )


def tformer_config(marian: dict, unk_id: int = 3) -> TransformerConfig:
    """The tformer config of a Marian config (as a dict); raises ``ConfigError`` for what tformer cannot express."""
    problems = []
    if not marian.get("scale_embedding", False):
        problems.append("scale_embedding=False")
    if marian.get("activation_function") not in ("relu", "gelu"):
        problems.append(f"activation_function={marian.get('activation_function')!r} (tformer has relu, gelu)")
    for ours, theirs in (("encoder_attention_heads", "decoder_attention_heads"),
                         ("encoder_ffn_dim", "decoder_ffn_dim")):
        if marian[ours] != marian[theirs]:
            problems.append(f"{ours}={marian[ours]} differs from {theirs}={marian[theirs]}")
    if problems:
        raise ConfigError("cannot import this Marian model into tformer: " + "; ".join(problems))
    return TransformerConfig(
        src_vocab_size=marian["vocab_size"], tgt_vocab_size=marian.get("decoder_vocab_size") or marian["vocab_size"],
        d_model=marian["d_model"], num_heads=marian["encoder_attention_heads"],
        num_encoder_layers=marian["encoder_layers"], num_decoder_layers=marian["decoder_layers"],
        d_ff=marian["encoder_ffn_dim"], dropout=marian["dropout"], attention_dropout=marian["attention_dropout"],
        activation_dropout=marian["activation_dropout"], activation=marian["activation_function"],
        max_len=marian["max_position_embeddings"], share_embeddings=marian["share_encoder_decoder_embeddings"],
        tie_output=marian["tie_word_embeddings"], norm_eps=MARIAN_NORM_EPS, pad_id=marian["pad_token_id"],
        bos_id=marian["decoder_start_token_id"], eos_id=_single(marian["eos_token_id"]), unk_id=unk_id,
    )


def to_marian(model: Seq2SeqTransformer) -> MarianMTModel:
    """A ``MarianMTModel`` (eval mode) computing the same function as ``model``."""
    from transformers import MarianConfig, MarianMTModel

    config = model.config
    hf = MarianMTModel(MarianConfig(**marian_config(config))).eval()
    ours = model.state_dict()
    theirs = hf.state_dict()
    order = hidden_order(config.d_model)
    with torch.no_grad():
        for pair in key_pairs(config):
            tensor = ours[pair.ours]
            if pair.part is not None:
                tensor = tensor.chunk(3, dim=0)[pair.part]
            tensor = permute_hidden(tensor, pair.kind, pair.ours.rsplit(".", 1)[1], order)
            theirs[pair.theirs].copy_(tensor.reshape(theirs[pair.theirs].shape))
    return hf


def from_marian(hf: MarianMTModel, unk_id: int = 3) -> Seq2SeqTransformer:
    """A tformer model (eval mode) computing the same function as a ``MarianMTModel``."""
    config = tformer_config(hf.config.to_dict(), unk_id)
    theirs = hf.state_dict()
    parts: dict[str, list[Tensor | None]] = {}
    tensors: dict[str, Tensor] = {}
    inverse = hidden_order(config.d_model).argsort()
    for pair in key_pairs(config):
        tensor = permute_hidden(theirs[pair.theirs].detach(), pair.kind, pair.ours.rsplit(".", 1)[1], inverse)
        if pair.part is None:
            tensors[pair.ours] = tensor.reshape(-1) if pair.kind == OTHER else tensor
        else:
            parts.setdefault(pair.ours, [None, None, None])[pair.part] = tensor
    tensors.update({name: torch.cat(thirds) for name, thirds in parts.items()})  # type: ignore[arg-type]
    model = Seq2SeqTransformer(config)
    model.load_state_dict_untied({k: v.float().contiguous() for k, v in tensors.items()}, source="Marian weights")
    return model.eval()


def export_marian(source: str | Path | Translator, out: str | Path) -> Path:
    """Write a Hugging Face Marian folder (weights, config, generation config, tokenizer) for a tformer model.

    Args:
        source: a tformer model folder (``config.json``, ``model.safetensors``, ``tokenizer.json``) or a
            loaded ``Translator``.
        out: the folder to write.
    Returns:
        the output folder. Load it with ``MarianMTModel.from_pretrained`` and ``AutoTokenizer.from_pretrained``;
        the tokenizer appends ``</s>`` to each source, as tformer does.
    """
    from transformers import GenerationConfig

    translator = _translator(source)
    out = Path(out)
    hf = to_marian(translator.model)
    cfg = translator.model.config
    hf.generation_config = GenerationConfig(  # tformer's translation defaults: beam 4, the model's length penalty
        decoder_start_token_id=cfg.bos_id, bos_token_id=cfg.bos_id, eos_token_id=cfg.eos_id, pad_token_id=cfg.pad_id,
        max_length=cfg.max_len, num_beams=4, early_stopping=True,
        length_penalty=float(getattr(translator, "length_penalty", 1.0)),
    )
    hf.save_pretrained(out)
    write_hf_tokenizer(translator, out)
    return out


def import_marian(folder: str | Path) -> Seq2SeqTransformer:
    """Load a Hugging Face Marian folder (such as one ``export_marian`` wrote) as a tformer model."""
    from transformers import MarianMTModel

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: no config.json; expected a Hugging Face Marian folder")
    hf = MarianMTModel.from_pretrained(folder).eval()
    return from_marian(hf, unk_id=_unk_id(folder))


def write_hf_tokenizer(translator: Translator, out: Path) -> None:
    """``tokenizer.json`` that appends ``</s>`` to sources, plus the config ``AutoTokenizer`` needs."""
    from tokenizers import Tokenizer, processors

    from tformer.text.bpe import BOS, EOS, PAD, UNK

    translator.tokenizer.save_pretrained(out)
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    tok.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS}", pair=f"$A $B {EOS}", special_tokens=[(EOS, translator.tokenizer.eos_id)]
    )
    tok.save(str(out / "tokenizer.json"))
    settings = dict(tokenizer_class="PreTrainedTokenizerFast", bos_token=BOS, eos_token=EOS, unk_token=UNK,
                    pad_token=PAD, model_max_length=translator.model.config.max_len - 1)
    (out / "tokenizer_config.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")


def _translator(source: str | Path | Translator) -> Translator:
    from tformer.decoding.translator import Translator

    return source if isinstance(source, Translator) else Translator.from_pretrained(source)


def _unk_id(folder: Path) -> int:
    path = folder / "tokenizer.json"
    if path.is_file():
        from tokenizers import Tokenizer

        from tformer.text.bpe import UNK

        found = Tokenizer.from_file(str(path)).token_to_id(UNK)
        if found is not None:
            return found
    return 3


def _single(value: int | list[int]) -> int:
    return value[0] if isinstance(value, list) else value
