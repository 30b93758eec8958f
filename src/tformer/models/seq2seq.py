"""The encoder-decoder Transformer of "Attention Is All You Need", assembled from ``tformer.nn``."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from tformer.errors import ModelFolderError
from tformer.files import CHECKSUMS, verify_checksums
from tformer.models.config import TransformerConfig
from tformer.models.weights import load_checked
from tformer.nn import (
    Decoder,
    DecoderLayer,
    Encoder,
    EncoderLayer,
    KVCache,
    PositionalEncoding,
    TokenEmbedding,
    padding_mask,
)
from tformer.nn.linear import Linear
from tformer.nn.outputs import DecoderOutput, EncoderOutput
from tformer.nn.quantized import Int8Linear, quantize_linear_layers


class OutputProjection(Linear):
    """Final linear layer to vocabulary logits, and log-softmax over them: a ``tformer.nn.linear.Linear`` (same
    product forms, same switch) whose weight may be tied to the target embedding's. hidden (..., d_model) -> logits
    (..., vocab)."""

    def __init__(self, d_model: int, vocab_size: int, weight: nn.Parameter | None = None) -> None:
        super().__init__(d_model, vocab_size, device="meta")  # shapes only, no random draws: the parameters follow
        self.weight = weight if weight is not None else nn.Parameter(torch.randn(vocab_size, d_model) * d_model**-0.5)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def log_probs(self, hidden: Tensor) -> Tensor:
        return torch.log_softmax(self.forward(hidden).float(), dim=-1)


class Seq2SeqTransformer(nn.Module):
    """Token embedding + positional encoding -> encoder stack; decoder stack -> output linear + softmax."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = c = config
        self.src_embed = TokenEmbedding(c.src_vocab_size, c.d_model, c.pad_id)
        self.tgt_embed = self.src_embed if c.share_embeddings else TokenEmbedding(c.tgt_vocab_size, c.d_model, c.pad_id)
        self.positions = PositionalEncoding(c.d_model, c.max_len, c.dropout, learned=c.learned_positions)
        layer_args = dict(
            d_model=c.d_model, num_heads=c.num_heads, d_ff=c.d_ff, dropout=c.dropout,
            attention_dropout=c.attention_dropout, activation_dropout=c.activation_dropout,
            activation=c.activation, norm_first=c.norm_first, norm_eps=c.norm_eps,
        )
        final = (lambda: nn.LayerNorm(c.d_model, eps=c.norm_eps)) if c.norm_first else (lambda: None)
        self.encoder = Encoder([EncoderLayer(**layer_args) for _ in range(c.num_encoder_layers)], final())
        self.decoder = Decoder([DecoderLayer(**layer_args) for _ in range(c.num_decoder_layers)], final())
        self.output = OutputProjection(c.d_model, c.tgt_vocab_size, self.tgt_embed.weight if c.tie_output else None)

    def encode(self, src: Tensor, need_weights: bool = False) -> EncoderOutput:
        """src (batch, src_len) token ids -> EncoderOutput with memory (batch, src_len, d_model)."""
        self._check_tokens(src, "src")
        src_mask = padding_mask(src, self.config.pad_id)  # (batch, src_len)
        x = self.positions(self.src_embed(src))
        memory, weights = self.encoder(x, src_mask, need_weights)
        return EncoderOutput(memory, src_mask, weights)

    def decode(
        self,
        tgt: Tensor,
        encoded: EncoderOutput,
        cache: KVCache | None = None,
        need_weights: bool = False,
    ) -> DecoderOutput:
        """tgt (batch, tgt_len) token ids -> DecoderOutput with hidden (batch, tgt_len, d_model).

        With a ``cache``, ``tgt`` holds only the new positions; earlier ones come from the cache.
        """
        self._check_tokens(tgt, "tgt")
        offset = cache.length if cache is not None else 0
        x = self.positions(self.tgt_embed(tgt), offset=offset)
        return self.decoder(x, encoded.memory, encoded.src_mask, cache, need_weights)

    def next_token_log_probs(self, tokens: Tensor, cache: KVCache, memory: EncoderOutput | None = None) -> Tensor:
        """The decoding interface (``tformer.decoding.interface.DecodingModel``): log-probabilities of the next token.

        Shapes:
            tokens: (rows, new_len) the target positions not yet in ``cache``; memory: ``encode``'s output for the
            same rows (required: this model has an encoder).
        Returns:
            (rows, tgt_vocab_size) float32 log-probabilities after the last position.
        """
        if memory is None:
            raise ValueError("Seq2SeqTransformer.next_token_log_probs needs memory (the encoder output), got None")
        return self.output.log_probs(self.decode(tokens, memory, cache).hidden[:, -1])

    def forward(self, src: Tensor, tgt: Tensor, keep: Tensor | None = None) -> Tensor:
        """Teacher-forced logits.

        Shapes:
            src: (batch, src_len); tgt: (batch, tgt_len), starting with BOS. Padding is ``config.pad_id``.
            keep: optional boolean (batch, tgt_len): compute logits only at these positions. Training passes the
                non-pad target positions, so no vocabulary projection or softmax is spent on padding.
        Returns:
            logits (batch, tgt_len, tgt_vocab_size); with ``keep``, (tokens, tgt_vocab_size) in the row-major order
            of ``keep``'s True entries, matching ``target[keep]``.
        """
        hidden = self.decode(tgt, self.encode(src)).hidden  # (batch, tgt_len, d_model)
        if keep is not None:
            hidden = hidden[keep]  # (tokens, d_model)
        return self.output(hidden)

    def state_dict_untied(self) -> dict[str, Tensor]:
        """The state dict with aliases of tied weights removed (safetensors stores each tensor once)."""
        tied = tied_parameter_names(self.config)
        return {k: v for k, v in self.state_dict().items() if k not in tied}

    def load_state_dict_untied(self, tensors: dict[str, Tensor], source: str = "weights") -> None:
        """Load weights saved by ``state_dict_untied``; a missing or unexpected name, or a wrong shape, is an error."""
        load_checked(self, self.state_dict_untied(), tensors, source, next(self.parameters()).dtype)

    def save_pretrained(self, folder: str | Path, dtype: torch.dtype | None = None) -> None:
        """Write ``config.json`` and ``model.safetensors`` (optionally cast, e.g. to float16) into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CHECKSUMS).unlink(missing_ok=True)  # it vouched for the files being replaced
        self.config.to_json(folder / "config.json")
        tensors = {}
        for name, t in self.state_dict_untied().items():
            t = t.detach().cpu()
            tensors[name] = (t.to(dtype) if dtype is not None and t.is_floating_point() else t).contiguous()
        save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> Seq2SeqTransformer:
        """Load a folder written by ``save_pretrained``; weights become float32; the model is in eval mode.

        A folder with ``checksums.json`` (trained runs' final/ and best/, the bundled model) has its files checked
        against it first, so flipped bytes in the weights fail loudly instead of translating wrongly."""
        folder = Path(folder)
        missing = [n for n in ("config.json", "model.safetensors") if not (folder / n).is_file()]
        if missing:
            found = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else "folder does not exist"
            raise ModelFolderError(f"{folder}: missing {', '.join(missing)} (found: {found})")
        verify_checksums(folder)
        model = cls(TransformerConfig.from_json(folder / "config.json"))
        try:
            tensors = load_file(str(folder / "model.safetensors"))
        except Exception as err:  # truncated or malformed safetensors
            raise ModelFolderError(f"{folder / 'model.safetensors'}: cannot read weights ({err})") from None
        model.load_state_dict_untied(tensors, source=str(folder / "model.safetensors"))
        return model.eval()

    def new_cache(self, capacity: int = 32) -> KVCache:
        return KVCache(self.config.num_decoder_layers, capacity)

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Distinct parameters (tied weights counted once)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def _check_tokens(self, tokens: Tensor, name: str) -> None:
        if tokens.dim() != 2:
            raise ValueError(f"{name} must have shape (batch, len), got {tuple(tokens.shape)}")
        if tokens.size(1) > self.config.max_len:
            raise ValueError(
                f"{name} has length {tokens.size(1)}, longer than the model's max_len={self.config.max_len}"
            )


def tied_parameter_names(config: TransformerConfig) -> set[str]:
    """State-dict keys that alias another key's tensor (stored once on disk)."""
    names = set()
    if config.share_embeddings:
        names.add("tgt_embed.weight")
    if config.tie_output:
        names.add("output.weight")
    return names


class Int8OutputProjection(nn.Module):
    """The output projection with int8 weights (inference only); same interface as ``OutputProjection``."""

    def __init__(self, output: OutputProjection) -> None:
        super().__init__()
        self.linear = Int8Linear(output.weight, output.bias)
        # The float weight stays readable (its device, code that inspects it); when tied it is the embedding anyway.
        self.weight, self.bias = output.weight, output.bias

    def forward(self, hidden: Tensor) -> Tensor:
        """hidden (batch, tgt_len, d_model) -> logits (batch, tgt_len, vocab)."""
        return self.linear(hidden)

    def log_probs(self, hidden: Tensor) -> Tensor:
        return torch.log_softmax(self.forward(hidden).float(), dim=-1)


def quantize_int8(model: Seq2SeqTransformer) -> Seq2SeqTransformer:
    """An inference-only copy of ``model`` (CPU, eval mode) with int8 weights in every linear layer and in the
    output projection; embeddings, layer norms and positions stay float32. See ``tformer.nn.quantized``."""
    copy = Seq2SeqTransformer(model.config)
    copy.load_state_dict(model.state_dict())
    copy.eval()
    # Cross-attention multiplies by the query rows and the key/value rows of its fused in_proj separately.
    blocks = {layer.cross_attn.in_proj: (model.config.d_model,) for layer in copy.decoder.layers}
    quantize_linear_layers(copy.encoder, blocks)
    quantize_linear_layers(copy.decoder, blocks)
    copy.output = Int8OutputProjection(copy.output)  # type: ignore[assignment]
    return copy


PRECISIONS = ("float32", "bfloat16", "int8")  # what ``with_precision`` (and ``tformer translate --precision``) takes


def with_precision(model: Seq2SeqTransformer, precision: str) -> Seq2SeqTransformer:
    """``model`` for inference at ``precision``: "float32" (the model itself), "bfloat16" (weights cast, in place;
    log-probabilities still come out in float32) or "int8" (``quantize_int8``'s copy, CPU only).

    bfloat16 on the CPU needs AVX512-BF16 or AMX (without them PyTorch emulates it, slower than float32); a
    precision this machine cannot run is a ValueError that says so.
    """
    from tformer.devices import cpu_has_bf16

    device = next(model.parameters()).device
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "bfloat16":
        if device.type == "cpu" and not cpu_has_bf16():
            raise ValueError("precision bfloat16 needs a CPU with AVX512-BF16 or AMX, and this one has neither; "
                             "use float32 or int8")
        return model.to(torch.bfloat16).eval()
    if precision == "int8":
        if device.type != "cpu":
            raise ValueError(f"precision int8 runs on the CPU only (fbgemm's kernels), the model is on {device}")
        if not {"fbgemm", "x86"} & set(torch.backends.quantized.supported_engines):
            raise ValueError("precision int8 needs PyTorch's fbgemm kernels, which this build lacks; use float32")
        return quantize_int8(model)
    return model

