"""CTranslate2 export for tformer translation models, and a small translator running the exported folder.

The export fills CTranslate2's ``TransformerSpec`` directly from tformer's weights: CTranslate2 takes the fused
self-attention Q/K/V matrix as it is and the positional table as given, so no permutation is needed (unlike the
Hugging Face Marian export). Needs the optional ``ctranslate2`` package.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from tformer.decoding.batching import length_sorted_chunks
from tformer.decoding.search import max_output_length
from tformer.models.config import TransformerConfig
from tformer.models.seq2seq import Seq2SeqTransformer
from tformer.text.bpe import BOS, EOS, UNK, BPETokenizer
from tformer.text.inputs import text_batch

if TYPE_CHECKING:
    from tformer.decoding.translator import Translator

TFORMER_CONFIG = "tformer_config.json"  # the source model's config, beside CTranslate2's own config.json
QUANTIZATIONS = ("int8", "int8_float32", "int16", "float16", "bfloat16", "float32")


def _ctranslate2() -> Any:
    try:
        import ctranslate2
    except ImportError:
        raise ImportError("CTranslate2 export needs the ctranslate2 package (pip install ctranslate2)") from None
    return ctranslate2


def _weights(spec: Any, module: nn.Module) -> None:
    """Copy a Linear's or LayerNorm's parameters into a LinearSpec / LayerNormSpec."""
    if isinstance(module, nn.LayerNorm):
        spec.gamma, spec.beta = _array(module.weight), _array(module.bias)
    else:
        spec.weight = _array(module.weight)
        if module.bias is not None:
            spec.bias = _array(module.bias)


def _array(tensor: Tensor) -> Any:
    return tensor.detach().float().cpu().contiguous().numpy()


def transformer_spec(model: Seq2SeqTransformer, tokenizer: BPETokenizer) -> Any:
    """A ``ctranslate2.specs.TransformerSpec`` holding ``model``'s weights and ``tokenizer``'s vocabulary."""
    ct2 = _ctranslate2()
    specs = ct2.specs
    cfg = model.config
    if tokenizer.vocab_size != cfg.src_vocab_size or tokenizer.vocab_size != cfg.tgt_vocab_size:
        raise ValueError(f"tokenizer has {tokenizer.vocab_size} tokens, the model expects "
                         f"{cfg.src_vocab_size} (source) and {cfg.tgt_vocab_size} (target)")
    activation = {"relu": specs.Activation.RELU, "gelu": specs.Activation.GELU}[cfg.activation]
    spec = specs.TransformerSpec.from_config(
        (cfg.num_encoder_layers, cfg.num_decoder_layers), cfg.num_heads, pre_norm=cfg.norm_first,
        activation=activation,
    )
    table = model.positions.table[: cfg.max_len]  # (max_len, d_model), fixed or learned
    for side, embed in ((spec.encoder, model.src_embed), (spec.decoder, model.tgt_embed)):
        side.scale_embeddings = True  # by sqrt(d_model), as TokenEmbedding does
        side.position_encodings.encodings = _array(table)
        (side.embeddings[0] if isinstance(side.embeddings, list) else side.embeddings).weight = _array(embed.weight)
    if cfg.norm_first:
        _weights(spec.encoder.layer_norm, model.encoder.final_norm)
        _weights(spec.decoder.layer_norm, model.decoder.final_norm)
    for layer_spec, layer in zip(spec.encoder.layer, model.encoder.layers):
        _sublayers(layer_spec, layer)
    for layer_spec, layer in zip(spec.decoder.layer, model.decoder.layers):
        _sublayers(layer_spec, layer)
        cross, d = layer.cross_attn, cfg.d_model
        query, key_value = layer_spec.attention.linear[0], layer_spec.attention.linear[1]
        query.weight, query.bias = _array(cross.in_proj.weight[:d]), _array(cross.in_proj.bias[:d])
        key_value.weight, key_value.bias = _array(cross.in_proj.weight[d:]), _array(cross.in_proj.bias[d:])
        _weights(layer_spec.attention.linear[2], cross.out_proj)
        _weights(layer_spec.attention.layer_norm, layer.cross_attn_norm.norm)
    spec.decoder.projection.weight = _array(model.output.weight)
    spec.decoder.projection.bias = _array(model.output.bias)
    tokens = [tokenizer.id_to_token(i) for i in range(tokenizer.vocab_size)]
    spec.register_source_vocabulary(tokens)
    spec.register_target_vocabulary(tokens)
    spec.config.unk_token, spec.config.bos_token, spec.config.eos_token = UNK, BOS, EOS
    spec.config.decoder_start_token = BOS
    spec.config.add_source_eos = True  # tformer's sources end with </s>
    spec.config.layer_norm_epsilon = cfg.norm_eps
    return spec


def _sublayers(layer_spec: Any, layer: nn.Module) -> None:
    """Self-attention (fused Q/K/V, as tformer stores it) and feed-forward, with their layer norms."""
    _weights(layer_spec.self_attention.linear[0], layer.self_attn.in_proj)
    _weights(layer_spec.self_attention.linear[1], layer.self_attn.out_proj)
    _weights(layer_spec.self_attention.layer_norm, layer.self_attn_norm.norm)
    _weights(layer_spec.ffn.linear_0, layer.ffn.linear1)
    _weights(layer_spec.ffn.linear_1, layer.ffn.linear2)
    _weights(layer_spec.ffn.layer_norm, layer.ffn_norm.norm)


def export_ctranslate2(source: str | Path | Translator, out: str | Path, quantization: str | None = None) -> Path:
    """Write a CTranslate2 model folder, plus ``tokenizer.json`` and ``tformer_config.json``, for a tformer model.

    Args:
        source: a tformer model folder or a loaded ``Translator``.
        out: the folder to write (replaced if it exists).
        quantization: weight type stored on disk, one of ``QUANTIZATIONS``; None keeps float32. CTranslate2
            can also quantize at load time (``compute_type="int8"``), so a float32 export serves both.
    """
    from tformer.interop.marian import _translator

    if quantization is not None and quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, got {quantization!r}")
    translator = _translator(source)
    spec = transformer_spec(translator.model, translator.tokenizer)
    spec.validate()
    spec.optimize(quantization=quantization)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spec.save(str(out))
    translator.tokenizer.save_pretrained(out)
    translator.model.config.to_json(out / TFORMER_CONFIG)
    return out


class CTranslate2Translator:
    """Translate with an exported CTranslate2 folder, with tformer's tokenizer and length limits.

    Args:
        folder: written by ``export_ctranslate2``.
        compute_type: "float32", "int8", ... (CTranslate2 converts the weights on load if needed).
        threads: intra-op threads (0 = CTranslate2's default).
    """

    def __init__(self, folder: str | Path, compute_type: str = "float32", threads: int = 0) -> None:
        ct2 = _ctranslate2()
        self.folder = Path(folder)
        self.tokenizer = BPETokenizer.from_pretrained(self.folder)
        self.translator = ct2.Translator(str(self.folder), device="cpu", compute_type=compute_type,
                                         intra_threads=threads)
        self.max_len = TransformerConfig.from_json(self.folder / TFORMER_CONFIG).max_len
        self._ids = {self.tokenizer.id_to_token(i): i for i in range(self.tokenizer.vocab_size)}

    def translate(self, texts: str | Sequence[str], beam: int = 4, batch_size: int = 32, length_penalty: float = 1.0,
                  max_len_a: float = 1.5, max_len_b: int = 10) -> str | list[str]:
        """One translation per text, in order; empty texts give empty strings. One string gives one string, as
        ``Translator.translate``."""
        batch, single = text_batch(texts)
        found = self.search(batch, beam, batch_size, length_penalty, max_len_a, max_len_b)
        out = [self.tokenizer.decode(ids) for ids in found]
        return out[0] if single else out

    def search(self, texts: Sequence[str], beam: int = 4, batch_size: int = 32, length_penalty: float = 1.0,
               max_len_a: float = 1.5, max_len_b: int = 10) -> list[list[int]]:
        """The best hypothesis's token ids (without EOS) per text, batched by length like ``Translator``.

        CTranslate2 takes one length limit per batch: the longest of tformer's per-sentence limits.
        """
        tokens = [self.tokenizer.tokens(t)[: self.max_len - 1] for t in texts]
        results: list[list[int]] = [[] for _ in texts]
        for chunk in length_sorted_chunks([len(t) for t in tokens], batch_size):
            limit = max(max_output_length(len(tokens[i]) + 1, self.max_len, max_len_a, max_len_b) for i in chunk)
            found = self.translator.translate_batch(
                [tokens[i] for i in chunk], beam_size=beam, length_penalty=length_penalty,
                max_decoding_length=limit, max_batch_size=batch_size,
            )
            for i, result in zip(chunk, found):
                results[i] = [self._ids[token] for token in result.hypotheses[0]]
        return results
