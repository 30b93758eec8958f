"""The Transformer's parts, model-agnostic. Imports nothing from the rest of the package."""

from tformer.nn.attention import MultiHeadAttention, scaled_dot_product_attention
from tformer.nn.cache import AttentionCache, KVCache
from tformer.nn.embedding import TokenEmbedding
from tformer.nn.fast import fast_paths, fast_paths_enabled
from tformer.nn.feedforward import FeedForward
from tformer.nn.layers import AddNorm, DecoderLayer, EncoderLayer
from tformer.nn.masks import causal_mask, padding_mask
from tformer.nn.positional import PositionalEncoding, sinusoidal_positional_encoding
from tformer.nn.stacks import Decoder, Encoder

__all__ = [
    "AddNorm",
    "AttentionCache",
    "Decoder",
    "DecoderLayer",
    "Encoder",
    "EncoderLayer",
    "FeedForward",
    "KVCache",
    "MultiHeadAttention",
    "PositionalEncoding",
    "TokenEmbedding",
    "causal_mask",
    "fast_paths",
    "fast_paths_enabled",
    "padding_mask",
    "scaled_dot_product_attention",
    "sinusoidal_positional_encoding",
]
