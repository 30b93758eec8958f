"""Attention weights of one sentence as (layers, heads, query_len, key_len) tensors with a label for every token.

Weights come from the models' own attention (``need_weights=True`` runs the reference path of the one attention
implementation in ``tformer.nn``). For a translation, the returned hypothesis is teacher-forced through the model
(see ``tformer.inspect.trace``): because the decoder is causal, that single pass computes exactly the attention
decoding used at each step, for greedy and for beam search alike. Layers and heads are counted from 1 wherever a
person chooses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from tformer.decoding.translator import Translator
from tformer.inspect.trace import DecodingTrace, trace_translations

if TYPE_CHECKING:
    from tformer.models.bert import BertModel
    from tformer.text.pretrained import Tokenizer

WEIGHT_DECIMALS = 4  # attention weights in JSON: enough for a picture, a quarter of the bytes

# kind -> (what it is, query axis, key axis)
KINDS = {
    "self": ("encoder self-attention", "query token", "key token (attended to)"),
    "decoder": ("decoder masked self-attention", "generated token (query)",
                "decoder input: <s> and earlier tokens (key)"),
    "cross": ("encoder-decoder (cross) attention", "generated token (query)", "source token (key)"),
}


@dataclass
class AttentionMaps:
    """Every head's attention for one sentence."""

    weights: Tensor  # (layers, heads, query_len, key_len), float32 on the CPU
    query_tokens: list[str]  # one label per row
    key_tokens: list[str]  # one label per column
    kind: str  # "self", "decoder" or "cross" (see KINDS)
    text: str = ""  # the sentence, for titles

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.weights.dim() != 4:
            raise ValueError(f"weights must be (layers, heads, query_len, key_len), got {tuple(self.weights.shape)}")
        expected = (len(self.query_tokens), len(self.key_tokens))
        if tuple(self.weights.shape[2:]) != expected:
            raise ValueError(f"weights end in {tuple(self.weights.shape[2:])}, but there are {expected[0]} query "
                             f"and {expected[1]} key labels")

    @property
    def num_layers(self) -> int:
        return self.weights.size(0)

    @property
    def num_heads(self) -> int:
        return self.weights.size(1)

    @property
    def description(self) -> str:
        return KINDS[self.kind][0]

    @property
    def axis_labels(self) -> tuple[str, str]:
        """(query axis, key axis)."""
        return KINDS[self.kind][1], KINDS[self.kind][2]

    def check(self, layer: int | None = None, head: int | None = None) -> None:
        check_layer_and_head(layer, head, self.num_layers, self.num_heads)

    def head(self, layer: int, head: int) -> Tensor:
        """One head's map (query_len, key_len); layer and head count from 1."""
        self.check(layer, head)
        return self.weights[layer - 1, head - 1]


def maps_json(maps: AttentionMaps, decimals: int = WEIGHT_DECIMALS) -> dict[str, Any]:
    """Attention maps as plain data (the HTTP API's form); weights[layer][head][query][key], layers and heads in
    model order, rounded to ``decimals``."""
    weights = maps.weights.double().mul(10**decimals).round().div(10**decimals)
    query_axis, key_axis = maps.axis_labels
    return {"kind": maps.kind, "description": maps.description, "layers": maps.num_layers, "heads": maps.num_heads,
            "query_tokens": maps.query_tokens, "key_tokens": maps.key_tokens, "query_axis": query_axis,
            "key_axis": key_axis, "weights": weights.tolist()}


def check_layer_and_head(layer: int | None, head: int | None, num_layers: int, num_heads: int) -> None:
    """Layers and heads count from 1; a number out of range is an error that names the valid range."""
    for name, value, count in (("layer", layer, num_layers), ("head", head, num_heads)):
        if value is not None and not 1 <= value <= count:
            raise ValueError(f"{name} {value} is out of range: this model has {count} {name}"
                             f"{'s' if count != 1 else ''}, numbered 1 to {count}")


def stack_layers(per_layer: Sequence[Tensor]) -> Tensor:
    """Per-layer weights, each (1, heads, query_len, key_len), -> (layers, heads, query_len, key_len)."""
    if not per_layer or any(w is None for w in per_layer):
        raise ValueError("no attention weights: run the model with need_weights=True")
    return torch.stack([w[0] for w in per_layer]).float().cpu()


def translation_attention(trace: DecodingTrace) -> dict[str, AttentionMaps]:
    """The three kinds of attention ("self", "decoder", "cross") of a trace made with ``need_weights=True``.

    Rows of the decoder's maps are labelled by the token generated at that step; the decoder's input at step t
    is the token generated at step t - 1 (``<s>`` first), which labels the decoder self-attention's columns.
    """
    if trace.forward is None:
        if not trace.steps:
            raise ValueError(f"nothing to show: the input {trace.source!r} is empty")
        raise ValueError("the trace holds no attention weights: trace with need_weights=True")
    target = trace.target_tokens
    enc, dec = trace.forward.encoded, trace.forward.decoded
    return {
        "self": AttentionMaps(stack_layers(enc.self_weights), trace.source_tokens, trace.source_tokens, "self",
                              trace.source),
        "decoder": AttentionMaps(stack_layers(dec.self_weights), target, ["<s>", *target[:-1]], "decoder",
                                 trace.source),
        "cross": AttentionMaps(stack_layers(dec.cross_weights), target, trace.source_tokens, "cross", trace.source),
    }


def capture_translation(
    translator: Translator, text: str, beam: int = 1, length_penalty: float | None = None
) -> tuple[DecodingTrace, dict[str, AttentionMaps]]:
    """Translate ``text`` (greedy, or beam search for ``beam > 1``) and capture the returned hypothesis's
    attention: its trace and the "self", "decoder" and "cross" maps."""
    trace = trace_translations(translator, [text], beam, length_penalty=length_penalty, need_weights=True)[0]
    return trace, translation_attention(trace)


def translation_attention_maps(
    translator: Translator, texts: Sequence[str], kind: str = "cross", beam: int = 1,
    layer: int | None = None, head: int | None = None,
) -> list[tuple[DecodingTrace, AttentionMaps]]:
    """Each text's translation (its trace) and that translation's ``kind`` attention ("self", "decoder" or
    "cross"). ``layer`` and ``head`` (from 1) are checked against the stack ``kind`` belongs to before any text is
    translated."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    config = translator.model.config
    layers = config.num_encoder_layers if kind == "self" else config.num_decoder_layers
    check_layer_and_head(layer, head, layers, config.num_heads)
    captured = [capture_translation(translator, text, beam) for text in texts]
    return [(trace, maps[kind]) for trace, maps in captured]


def encoder_attention_maps(
    model: BertModel, tokenizer: Tokenizer, texts: Sequence[str], kind: str = "self",
    layer: int | None = None, head: int | None = None,
) -> list[AttentionMaps]:
    """``encoder_attention`` of each text; ``layer`` and ``head`` (from 1) are checked first. An encoder has only
    self-attention: another ``kind`` is an error."""
    if kind != "self":
        raise ValueError(f"kind {kind!r}: a BERT encoder has only self-attention (kind 'self')")
    check_layer_and_head(layer, head, model.config.num_layers, model.config.num_heads)
    return [encoder_attention(model, tokenizer, text) for text in texts]


def encoder_attention(model: BertModel, tokenizer: Tokenizer, text: str) -> AttentionMaps:
    """Self-attention of a BERT-style encoder on one text, [CLS] and [SEP] included."""
    batch = tokenizer(text).to(next(model.parameters()).device)  # (1, seq), where the model is
    with torch.inference_mode():
        out = model(batch.input_ids, batch.attention_mask, batch.token_type_ids, need_weights=True)
    labels = tokenizer.tokens(text)
    if len(labels) != batch.input_ids.size(1):
        raise ValueError(f"the text has {len(labels)} tokens, more than the model's {batch.input_ids.size(1)}: "
                         "shorten it")
    return AttentionMaps(stack_layers(out.attentions), labels, labels, "self", text)
