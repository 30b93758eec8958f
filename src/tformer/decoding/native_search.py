"""Greedy and beam search of one sentence with the whole loop in C++ (``tformer/nn/csrc/decoder_step.cpp``).

One sentence at a time, a translation spends as much time between PyTorch's operator calls as in them: per step
the embedding, the positions, the decoder step, the output projection, the log-softmax and the search's own
bookkeeping (restricting finished rows, picking tokens, reordering the cache) are each a Python call. The C++
loops make the same calls to the same kernels in the same order as ``greedy.py`` and ``beam.py`` with the native
decoder step (``tformer.nn.native``), so they choose the same tokens with the same log-probabilities (tested); they
only leave the interpreter out.

``greedy_search`` and ``beam_search`` take these loops for a batch of one sentence when :func:`prepare` finds no
reason against it: a ``Seq2SeqTransformer`` (float32, bfloat16 or its int8 copy) in eval mode on the CPU, the
native step built and applicable, and ``TFORMER_NATIVE_SEARCH`` not "0". Larger batches stay in Python, which drops
finished sentences from the batch as it goes.
"""

from __future__ import annotations

import os
import weakref

import torch
from torch import Tensor, nn

from tformer.decoding.search import output_limits
from tformer.models.seq2seq import Int8OutputProjection, OutputProjection, Seq2SeqTransformer
from tformer.nn import PositionalEncoding, TokenEmbedding, native
from tformer.nn.linear import WIDE_OUTPUT, Linear, packable
from tformer.nn.masks import without_trivial_mask
from tformer.nn.outputs import EncoderOutput

ENV = "TFORMER_NATIVE_SEARCH"  # "0" keeps the search loops in Python (the native decoder step still runs)


def prepare(model: object, src: Tensor) -> object | str:
    """What the C++ loops need to search ``src`` (batch, src_len) with ``model`` (a ``SearchModel``, gathered once
    per model and kept while its weights are unchanged), or why they cannot search it exactly as the Python loops
    would (a string)."""
    if os.environ.get(ENV, "1") == "0":
        return f"turned off ({ENV}=0)"
    if src.size(0) != 1:
        return f"a batch of {src.size(0)} (the C++ loops take one sentence)"
    if not isinstance(model, Seq2SeqTransformer):
        return f"{type(model).__name__} is not a Seq2SeqTransformer"
    if model.training or torch.is_grad_enabled():
        return "training or gradients are enabled"
    if type(model.tgt_embed) is not TokenEmbedding or type(model.positions) is not PositionalEncoding:
        return "the embedding or the positions are not tformer.nn's"
    if not isinstance(model.decoder.final_norm, nn.LayerNorm | nn.Identity):
        return "the decoder's final norm is neither a LayerNorm nor absent"
    if not _output_parts(model):
        return "the output projection is not one the C++ loops know"
    if src.device.type != "cpu":
        return f"the source is on {src.device.type}"
    mask = without_trivial_mask(src.ne(model.config.pad_id))
    step = torch.zeros(1, 1, model.config.d_model, dtype=model.tgt_embed.weight.dtype)  # what each step takes
    state = native.layers_state(model.decoder.layers, step, mask)
    if isinstance(state, str):
        return state
    if not hasattr(native.native_ops(), "greedy_search"):
        return "the native extension has no search loops (an older build)"
    return _search_model(model, state)


def greedy(model: Seq2SeqTransformer, prepared: object, src: Tensor, max_len_a: float, max_len_b: int
           ) -> tuple[Tensor, Tensor]:
    """``greedy_search``'s loop for one sentence ``src`` (1, src_len), given ``prepare``'s result: tokens
    (1, steps), EOS after the end, and their log-probabilities (1, steps)."""
    cfg = model.config
    limits = output_limits(src, cfg.pad_id, cfg.max_len, max_len_a, max_len_b)  # (1,)
    steps = int(limits.max()) + 1
    keys, values, mask = _cross_attention(model, model.encode(src))
    return native.native_ops().greedy_search(  # type: ignore[union-attr]
        prepared, keys, values, mask, limits, cfg.bos_id, cfg.eos_id, steps, steps)


def beam(model: Seq2SeqTransformer, prepared: object, src: Tensor, k: int, max_len_a: float, max_len_b: int
         ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``beam_search``'s loop for one sentence ``src`` (1, src_len) with ``k`` hypotheses, given ``prepare``'s
    result: tokens (k, steps + 1) from BOS, step log-probabilities (k, steps), lengths (k,) counting EOS and
    scores (k,)."""
    cfg = model.config
    limits = output_limits(src, cfg.pad_id, cfg.max_len, max_len_a, max_len_b).repeat_interleave(k)  # (k,)
    steps = int(limits.max()) + 1
    encoded = model.encode(src).select(torch.zeros(k, dtype=torch.long))  # the sentence's row, k times
    keys, values, mask = _cross_attention(model, encoded)
    return native.native_ops().beam_search(  # type: ignore[union-attr]
        prepared, keys, values, mask, limits, cfg.bos_id, cfg.eos_id, cfg.pad_id, steps, steps + 1)


def _cross_attention(model: Seq2SeqTransformer, encoded: EncoderOutput
                     ) -> tuple[list[Tensor], list[Tensor], Tensor | None]:
    """Each decoder layer's cross-attention keys and values (rows, heads, src_len, head_dim), as
    ``native.fill_caches`` stores them, and the memory mask (rows, 1, 1, src_len) or None, as the stack passes it."""
    pairs = [layer.cross_attn.memory_keys_values(encoded.memory) for layer in model.decoder.layers]
    mask = without_trivial_mask(encoded.src_mask)
    return [k for k, _ in pairs], [v for _, v in pairs], None if mask is None else mask[:, None, None, :]


def _output_parts(model: Seq2SeqTransformer) -> tuple | None:
    """The output projection as the C++ loops take it: (weight, bias, oneDNN copy or None, row-kernel copy or None,
    int8 block or None)."""
    output = model.output
    if type(output) is Int8OutputProjection and len(output.linear.bounds) == 2:
        return output.weight, output.bias, None, None, output.linear.packed_rows()
    if isinstance(output, OutputProjection) and isinstance(output, Linear) and output.bias is not None:
        packed = output.packed_weight() if packable(output.weight) else None
        return output.weight, output.bias, packed, output.row_packed_weight(), None
    return None


# Per model: the decoder layers' state and the fingerprint of the other weights the SearchModel was gathered from,
# and the SearchModel (reused while both are unchanged).
_kept: weakref.WeakKeyDictionary[Seq2SeqTransformer, tuple[native._State, tuple, object]] = \
    weakref.WeakKeyDictionary()


def _search_model(model: Seq2SeqTransformer, state: native._State) -> object:
    """The C++ ``SearchModel`` of ``model``: its decoder layers' tensors (``state``, from ``native.layers_state``)
    and the parts around them."""
    parts = _output_parts(model)
    assert parts is not None
    weight, bias, packed, row_packed, int8 = parts
    norm = model.decoder.final_norm
    ends = [model.tgt_embed.weight, model.positions.table, weight, bias]
    if isinstance(norm, nn.LayerNorm):
        ends += [norm.weight, norm.bias]
    # The copies stay alive while the SearchModel holds them, so their ids name them.
    key = (packed is not None and id(packed), row_packed is not None and id(row_packed), id(int8),
           *((t.data_ptr(), t._version) if not t.is_inference() else (None, id(t)) for t in ends))
    kept = _kept.get(model)
    if kept is not None and kept[0] is state and kept[1] == key and None not in key:
        return kept[2]
    ops = native.native_ops()
    assert ops is not None
    layer_norm = isinstance(norm, nn.LayerNorm)
    search_model = ops.SearchModel(  # type: ignore[attr-defined]
        state.tensors, state.packed, state.row_packed, state.int8, state.heads, state.eps, state.norm_first,
        state.activation, WIDE_OUTPUT, model.tgt_embed.weight.detach(), float(model.tgt_embed.scale),
        model.positions.table.detach().to(state.dtype), norm.weight.detach() if layer_norm else None,
        norm.bias.detach() if layer_norm else None, float(norm.eps) if layer_norm else 0.0, weight.detach(),
        bias.detach(), packed, row_packed, int8,
    )
    _kept[model] = (state, key, search_model)
    return search_model
