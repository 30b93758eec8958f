"""The decoder-only Transformer (GPT-2 and Llama families): a stack of masked self-attention blocks that predicts
the next token, assembled from ``tformer.nn``.

GPT-2 style: learned positions, LayerNorm, GELU feed-forward, biases. Llama style: rotary positions, RMSNorm,
SwiGLU feed-forward, grouped-query attention, no biases. Both are pre-norm. Left-padded batches work: position ids
count each row's real tokens, so a padded row computes what it would alone, with or without the cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from tformer.errors import ConfigError, ModelFolderError
from tformer.models.config import JsonConfig, require_positive, require_probability
from tformer.models.formats import checkpoint_formats, load_checkpoint
from tformer.models.weights import load_checked
from tformer.nn import FeedForward, KVCache, MultiHeadAttention, TokenEmbedding
from tformer.nn.cache import AttentionCache
from tformer.nn.dropout import Dropout
from tformer.nn.feedforward import ACTIVATIONS
from tformer.nn.linear import Linear
from tformer.nn.masks import without_trivial_mask
from tformer.nn.quantized import Int8Linear, Int8WeightOnlyLinear, quantize_linear_layers
from tformer.nn.rmsnorm import RMSNorm
from tformer.nn.rotary import RotaryEmbedding
from tformer.nn.swiglu import SwiGLUFeedForward

POSITIONS = ("learned", "rotary")
NORMS = ("layernorm", "rmsnorm")
FFN_ACTIVATIONS = (*ACTIVATIONS, "swiglu")  # "swiglu": the gated SiLU feed-forward (tformer.nn.swiglu)
FAMILY = "causal_lm"  # the name this model's foreign checkpoint formats (GGUF, Hugging Face) register under


@dataclass
class CausalLMConfig(JsonConfig):
    """A decoder-only language model. Defaults are GPT-2 small (Radford et al., 2019); ``llama()`` gives the Llama
    choices. ``num_kv_heads`` None means plain multi-head attention (as many key/value heads as query heads)."""

    vocab_size: int = 50257
    d_model: int = 768
    num_layers: int = 12
    num_heads: int = 12
    num_kv_heads: int | None = None
    d_ff: int = 3072
    max_len: int = 1024  # the context: the longest token sequence the model takes
    positions: str = "learned"  # "learned" (a table of max_len vectors) or "rotary"
    rope_base: float = 10000.0  # rotary: θ_i = rope_base^(-2i / head_dim)
    norm: str = "layernorm"  # or "rmsnorm"
    norm_eps: float = 1e-5
    activation: str = "gelu_tanh"  # feed-forward: "relu", "gelu", "gelu_tanh" or "swiglu"
    bias: bool = True  # biases in the attention and feed-forward projections (and LayerNorm)
    tie_embeddings: bool = True  # the output projection is the token embedding matrix
    dropout: float = 0.1
    # > 0 sends PyTorch's CPU attention kernel to its unfused path: 644 against 142 ms forward + backward at
    # (batch 16, 8 heads, 512 positions, head_dim 32) on 2 cores; the bundled recipes keep it at 0.
    attention_dropout: float = 0.0
    init_std: float = 0.02
    pad_id: int = 50256
    bos_id: int = 50256
    eos_id: int = 50256

    @classmethod
    def llama(cls, **fields: object) -> CausalLMConfig:
        """Llama's choices (rotary positions, RMSNorm, SwiGLU, no biases, no dropout), updated by ``fields``."""
        choices: dict[str, object] = dict(
            positions="rotary", norm="rmsnorm", activation="swiglu", bias=False, dropout=0.0, norm_eps=1e-5,
            tie_embeddings=False, pad_id=0, bos_id=1, eos_id=2,
        )
        return cls(**{**choices, **fields})  # type: ignore[arg-type]

    @property
    def head_dim(self) -> int:
        return self.d_model // self.num_heads

    @property
    def kv_heads(self) -> int:
        return self.num_heads if self.num_kv_heads is None else self.num_kv_heads

    def __post_init__(self) -> None:
        require_positive(self, "vocab_size", "d_model", "num_layers", "num_heads", "d_ff", "max_len")
        require_probability(self, "dropout", "attention_dropout")
        if self.num_kv_heads is not None:
            require_positive(self, "num_kv_heads")
        if self.d_model % self.num_heads != 0:
            raise ConfigError(
                f"d_model must be divisible by num_heads, got d_model={self.d_model}, num_heads={self.num_heads}"
            )
        if self.num_heads % self.kv_heads != 0:
            raise ConfigError(
                f"num_heads must be a multiple of num_kv_heads, got num_heads={self.num_heads}, "
                f"num_kv_heads={self.num_kv_heads}"
            )
        for name, allowed in (("positions", POSITIONS), ("norm", NORMS), ("activation", FFN_ACTIVATIONS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")
        if self.positions == "rotary" and self.head_dim % 2:
            raise ConfigError(f"rotary positions need an even head_dim (d_model / num_heads), got {self.head_dim}")
        if not (isinstance(self.rope_base, (int, float)) and self.rope_base > 1):
            raise ConfigError(f"rope_base must be a number above 1, got {self.rope_base!r}")
        if not (isinstance(self.norm_eps, (int, float)) and self.norm_eps > 0):
            raise ConfigError(f"norm_eps must be positive, got {self.norm_eps!r}")
        for name in ("pad_id", "bos_id", "eos_id"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value < self.vocab_size:
                raise ConfigError(f"{name} must be a token id below vocab_size={self.vocab_size}, got {value!r}")


@dataclass
class CausalLMOutput:
    logits: Tensor  # (batch, seq, vocab)
    attentions: list[Tensor] | None = None  # per layer (batch, heads, seq, cached + seq), when asked for


class DecoderOnlyCache(KVCache):
    """The key/value cache of a decoder-only model: per layer a growing self-attention cache (num_kv_heads heads),
    plus which cached positions are real tokens (not left padding) and how many real tokens each row has seen,
    from which the next position ids follow."""

    def __init__(self, num_layers: int, capacity: int = 32) -> None:
        super().__init__(num_layers, capacity)
        self.cross_attn: list[AttentionCache] = []  # no encoder
        self.key_mask: Tensor | None = None  # (batch, length), True = real token
        self.seen: Tensor | None = None  # (batch,) real tokens so far

    def reorder(self, beam_index: Tensor) -> None:
        self.select(beam_index)

    def select(self, batch_index: Tensor) -> None:
        super().select(batch_index)
        if self.key_mask is not None and self.seen is not None:
            self.key_mask = self.key_mask.index_select(0, batch_index)
            self.seen = self.seen.index_select(0, batch_index)


class DecoderOnlyLayer(nn.Module):
    """x = x + SelfAttention(Norm(x)); x = x + FeedForward(Norm(x)): pre-norm, masked self-attention only."""

    def __init__(self, config: CausalLMConfig) -> None:
        super().__init__()
        c = config
        self.attn_norm = make_norm(c)
        self.self_attn = MultiHeadAttention(c.d_model, c.num_heads, c.attention_dropout, c.bias, c.kv_heads)
        self.ffn_norm = make_norm(c)
        if c.activation == "swiglu":
            self.ffn: nn.Module = SwiGLUFeedForward(c.d_model, c.d_ff, bias=c.bias)
        else:
            self.ffn = FeedForward(c.d_model, c.d_ff, activation=c.activation, bias=c.bias)
        self.dropout = Dropout(c.dropout)

    def forward(
        self,
        x: Tensor,
        key_mask: Tensor | None,
        rotary: tuple[Tensor, Tensor] | None,
        cache: AttentionCache | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """x: (batch, len, d_model) new positions; key_mask: (batch, cached + len), True = real token.
        Returns the new hidden states (batch, len, d_model) and, if asked, the attention weights."""
        attn = self.self_attn(
            self.attn_norm(x), key_padding_mask=key_mask, causal=True, cache=cache, need_weights=need_weights,
            rotary=rotary,
        )
        x = x + self._dropout(attn.output)
        x = x + self._dropout(self.ffn(self.ffn_norm(x)))
        return x, attn.weights

    def _dropout(self, x: Tensor) -> Tensor:
        return self.dropout(x) if self.training else x


def make_norm(config: CausalLMConfig) -> nn.Module:
    if config.norm == "rmsnorm":
        return RMSNorm(config.d_model, config.norm_eps)
    return nn.LayerNorm(config.d_model, eps=config.norm_eps, bias=config.bias)


class CausalLM(nn.Module):
    """Token embedding (+ learned positions) -> N decoder-only layers -> final norm -> vocabulary logits."""

    def __init__(self, config: CausalLMConfig) -> None:
        super().__init__()
        self.config = c = config
        self.embed = TokenEmbedding(c.vocab_size, c.d_model, scale=False)
        self.positions = nn.Embedding(c.max_len, c.d_model) if c.positions == "learned" else None
        self.rotary = RotaryEmbedding(c.head_dim, c.rope_base) if c.positions == "rotary" else None
        self.dropout = Dropout(c.dropout)
        self.layers = nn.ModuleList([DecoderOnlyLayer(c) for _ in range(c.num_layers)])
        self.final_norm = make_norm(c)
        self.output = Linear(c.d_model, c.vocab_size, bias=False)
        self._init_weights()
        if c.tie_embeddings:
            self.output.weight = self.embed.weight

    def _init_weights(self) -> None:
        """GPT-2's initialisation: N(0, init_std) matrices, zero biases, and the projections that write into the
        residual stream scaled by 1/sqrt(2 · num_layers), so the stream's variance does not grow with depth."""
        std = self.config.init_std
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.embed.weight, std=std)
        if self.positions is not None:
            nn.init.normal_(self.positions.weight, std=std / 2)
        for layer in self.layers:
            last = layer.ffn.down if isinstance(layer.ffn, SwiGLUFeedForward) else layer.ffn.linear2
            for linear in (layer.self_attn.out_proj, last):
                nn.init.normal_(linear.weight, std=std / math.sqrt(2 * self.config.num_layers))

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Next-token logits at every position.

        Args:
            input_ids: (batch, seq) token ids.
            attention_mask: (batch, seq), True/1 = real token, False/0 = padding (left padding: pads first).
        Returns:
            logits (batch, seq, vocab). A position's logits depend on the real tokens up to it only.
        """
        return self.decode(input_ids, attention_mask).logits

    def decode(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        cache: DecoderOnlyCache | None = None,
        need_weights: bool = False,
        last_only: bool = False,
    ) -> CausalLMOutput:
        """``forward`` with a cache and attention weights.

        Args:
            input_ids: (batch, new_len) the positions not yet in ``cache`` (all of them without a cache).
            attention_mask: (batch, new_len) for these positions, True = real token; None = all real.
            cache: from ``new_cache``; updated in place.
            need_weights: also return per-layer attention weights (batch, heads, new_len, cached + new_len).
            last_only: logits of the last position only (batch, 1, vocab): what decoding needs.
        """
        mask, positions = self._mask_and_positions(input_ids, attention_mask, cache)
        x = self.embed(input_ids)  # (batch, new_len, d_model)
        rotary = None
        if self.positions is not None:
            x = x + self.positions(positions)
        if self.rotary is not None:
            rotary = self.rotary(positions, x.dtype)  # cos, sin: (batch, 1, new_len, head_dim)
        x = self.dropout(x) if self.training else x
        key_mask = without_trivial_mask(mask)  # (batch, cached + new_len) or None
        attentions = []
        for i, layer in enumerate(self.layers):
            x, weights = layer(x, key_mask, rotary, cache.self_attn[i] if cache is not None else None, need_weights)
            if need_weights:
                attentions.append(weights)
        if last_only:
            x = x[:, -1:]
        return CausalLMOutput(self.output(self.final_norm(x)), attentions if need_weights else None)

    def _mask_and_positions(
        self, input_ids: Tensor, attention_mask: Tensor | None, cache: DecoderOnlyCache | None
    ) -> tuple[Tensor, Tensor]:
        """The key mask over cached + new positions (batch, cached + new_len) and the new positions' ids
        (batch, new_len): each real token's position is the number of real tokens before it in its row."""
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must have shape (batch, seq), got {tuple(input_ids.shape)}")
        batch, new_len = input_ids.shape
        cached = cache.length if cache is not None else 0
        if cached + new_len > self.config.max_len:
            raise ValueError(
                f"sequence of {cached + new_len} tokens is longer than the model's context "
                f"(max_len={self.config.max_len})"
            )
        if attention_mask is None:
            new_mask = torch.ones(batch, new_len, dtype=torch.bool, device=input_ids.device)
        elif attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)}, expected {tuple(input_ids.shape)} "
                "(the new positions)"
            )
        else:
            new_mask = attention_mask.bool()
        seen = cache.seen if cache is not None and cache.seen is not None else input_ids.new_zeros(batch)
        positions = (seen[:, None] + new_mask.cumsum(1) - 1).clamp(min=0)  # (batch, new_len)
        mask = new_mask
        if cache is not None:
            if cache.key_mask is not None:
                mask = torch.cat([cache.key_mask, new_mask], dim=1)
            cache.key_mask, cache.seen = mask, seen + new_mask.sum(1)
        return mask, positions

    # ------------------------------------------------------------------------------------- decoding interface

    def new_cache(self, capacity: int = 32) -> DecoderOnlyCache:
        """An empty cache with room for ``capacity`` positions (it grows when needed)."""
        return DecoderOnlyCache(self.config.num_layers, capacity)

    def next_token_log_probs(
        self, tokens: Tensor, cache: DecoderOnlyCache, memory: None = None, attention_mask: Tensor | None = None
    ) -> Tensor:
        """``tformer.decoding.interface.DecodingModel``: log-probabilities (rows, vocab), float32, of the token
        after ``tokens`` (rows, new_len), the positions not yet in ``cache``.

        On the first call (an empty cache) without an ``attention_mask``, a row's leading ``pad_id`` tokens are
        taken as left padding; later calls take every token as real.
        """
        if attention_mask is None and cache.length == 0 and bool((tokens[:, 0] == self.config.pad_id).any()):
            attention_mask = tokens.ne(self.config.pad_id).cumsum(1) > 0  # (rows, new_len): from the first real one
        logits = self.decode(tokens, attention_mask, cache, last_only=True).logits[:, -1]  # (rows, vocab)
        return torch.log_softmax(logits.float(), dim=-1)

    # ------------------------------------------------------------------------------------------ parameters, files

    def set_dropout(self, p: float) -> None:
        """Set the rate of the dropouts ``config.dropout`` made (after the embedding and on both residual branches of
        every layer) for a schedule such as the trainer's late dropout; ``config`` keeps the rate the model was built
        with, and the attention and feed-forward inner rates are untouched."""
        if not 0.0 <= p < 1.0:
            raise ValueError(f"a dropout rate must be in [0, 1), got {p!r}")
        for module in (self.dropout, *(layer.dropout for layer in self.layers)):
            module.p = p

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Distinct parameters (a tied output projection counted once)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def state_dict_untied(self) -> dict[str, Tensor]:
        """The state dict without the tied output weight (safetensors stores each tensor once)."""
        state = self.state_dict()
        if self.config.tie_embeddings:
            state.pop("output.weight")
        return state

    def save_pretrained(self, folder: str | Path, dtype: torch.dtype | None = None) -> None:
        """Write ``config.json`` and ``model.safetensors`` (tformer's names; floating-point weights optionally cast,
        e.g. to float16 for a bundle: ``from_pretrained`` loads them back in its own dtype) into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.config.to_json(folder / "config.json")
        tensors = {}
        for name, t in self.state_dict_untied().items():
            t = t.detach().cpu()
            tensors[name] = (t.to(dtype) if dtype is not None and t.is_floating_point() else t).contiguous()
        save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, dtype: torch.dtype = torch.float32) -> CausalLM:
        """Load a model in eval mode from: a folder written by ``save_pretrained``; a Hugging Face Llama or GPT-2
        folder (config.json + safetensors); a GGUF file of Llama architecture; or a short name ("smollm2"). The
        foreign formats are registered by ``tformer.interop`` (``tformer.models.formats``; ``import tformer``)."""
        if any(f.recognises(name_or_path) for f in checkpoint_formats(FAMILY)):
            return load_checkpoint(FAMILY, cls, name_or_path, dtype=dtype)
        folder = Path(name_or_path)
        missing = [n for n in ("config.json", "model.safetensors") if not (folder / n).is_file()]
        if missing:
            found = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else "it does not exist"
            raise ModelFolderError(f"{folder}: missing {', '.join(missing)} (found: {found})")
        model = cls(CausalLMConfig.from_json(folder / "config.json"))
        try:
            tensors = load_file(str(folder / "model.safetensors"))
        except Exception as err:  # truncated or malformed safetensors
            raise ModelFolderError(f"{folder / 'model.safetensors'}: cannot read weights ({err})") from None
        model.load_weights(tensors, source=str(folder / "model.safetensors"))
        return model.to(dtype).eval()

    def load_weights(self, tensors: dict[str, Tensor], source: str = "weights") -> None:
        """Load a state dict without the tied output weight; a missing or unexpected name, or a wrong shape, is an
        error naming it."""
        load_checked(self, self.state_dict_untied(), tensors, source, self.embed.weight.dtype, ModelFolderError)


def empty_causal_lm(config: CausalLMConfig) -> CausalLM:
    """A ``CausalLM`` whose parameters are allocated but not initialised, for loaders that fill every one next:
    randomly initialising 135M parameters only to overwrite them costs seconds."""
    with torch.device("meta"):
        model = CausalLM(config)
    model.to_empty(device="cpu")
    if model.rotary is not None:  # a computed buffer, not a loaded weight
        model.rotary = RotaryEmbedding(config.head_dim, config.rope_base)
    if config.tie_embeddings:
        model.output.weight = model.embed.weight
    return model


def quantize_int8(
    model: CausalLM, kind: str = "weight_only", compute_dtype: torch.dtype = torch.bfloat16
) -> CausalLM:
    """An inference-only copy of ``model`` (CPU, eval mode) whose linear layers and output projection keep their
    weights in int8 (one scale per output row; ``tformer.nn.quantized``): a quarter of the bytes that decoding one
    token at a time must read. Embeddings, norms, attention and the residual stream stay float32; a tied output
    projection gets its own int8 copy.

    Args:
        kind: "weight_only" (default): each product takes its input unquantized, rounded to ``compute_dtype``
            (``Int8WeightOnlyLinear``; bfloat16 is the dtype PyTorch's kernel is fast in). "dynamic": fbgemm's
            ``Int8Linear``, which also quantizes every input with one scale; models with activation outliers do not
            survive it (SmolLM2-135M-Instruct answers "What is the capital of France?" with "La France, la
            France, ..."), kept for comparison.

    Measured on SmolLM2-135M-Instruct (benchmarks/causal_lm.py; greedy answers of 32 tokens to 50 chat prompts):
    weight-only int8 gives the same answer as float32 on 26% of them (34% with float32 inputs, whose kernel is 15-35x
    slower; bfloat16 weights 40%, "dynamic" 0%), and the answers read as float32's do: "The capital
    of France is Paris." Weight rounding alone moves the greedy path once a near tie comes, so check quality for
    your use. Speed (CPU time of one thread, 64 tokens): 63 tokens/s against float32's 37 ("dynamic" 96)."""
    weight = model.output.weight.detach().float()  # (vocab, d_model)
    output = Int8WeightOnlyLinear(weight, None, compute_dtype) if kind == "weight_only" else Int8Linear(weight, None)
    return _quantized_copy(model, kind, compute_dtype, output)


def quantize_int4(model: CausalLM) -> CausalLM:
    """``quantize_int8``'s copy with the decoder layers' weights in 4 bits instead (``Int4WeightOnlyLinear``: groups
    of 32 inputs, 16 levels between each group's smallest and largest weight, products in bfloat16); the output
    projection stays weight-only int8, the embeddings float32.

    That is the layout of GGUF's Q4_1, so a model read from a Q4_1 file (smollm2) gets its file's own weights back,
    but for the bfloat16 rounding of each group's scale and offset, and reads a sixth of float32's bytes per
    token in its layers. Measured on SmolLM2-135M-Instruct (benchmarks/causal_lm.py; greedy answers of 32 tokens to
    50 chat prompts): the same answer as float32 on 48% of them (weight-only int8 26%, bfloat16 weights 40%), and
    88 tokens/s against int8's 63 and float32's 37 (CPU time of one thread, 64 tokens; docs/generation.md): the
    fastest path that keeps the answers. Other models' weights are rounded to 16 levels a group: check quality."""
    output = Int8WeightOnlyLinear(model.output.weight.detach().float(), None)
    return _quantized_copy(model, "int4_weight_only", torch.bfloat16, output)


def _quantized_copy(model: CausalLM, kind: str, compute_dtype: torch.dtype, output: nn.Module) -> CausalLM:
    """A float32 eval copy of ``model`` with its layers' linear layers quantized (``kind``) and ``output`` as its
    output projection (a tied one is no longer tied: the embedding stays float32)."""
    copy = empty_causal_lm(model.config)
    copy.load_state_dict(model.state_dict())
    copy.eval()
    quantize_linear_layers(copy.layers, kind=kind, compute_dtype=compute_dtype)
    copy.output = output  # type: ignore[assignment]
    return copy
