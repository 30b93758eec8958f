"""BERT: a post-norm Transformer encoder with learned positions and segment embeddings, plus its heads.

Built from ``tformer.nn`` (the same ``EncoderLayer`` and attention as the translation model). Weights load from and
save to Hugging Face checkpoint folders through the format registered for the ``"bert"`` family
(``tformer.models.formats``): ``tformer.interop.hf_bert``, which holds the name mapping, registers itself when
``tformer`` is imported. Models never import ``interop``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from tformer.errors import ConfigError
from tformer.models.config import JsonConfig, require_positive, require_probability
from tformer.models.formats import load_checkpoint, save_checkpoint
from tformer.nn import Encoder, EncoderLayer, PositionalEncoding, TokenEmbedding
from tformer.nn.dropout import Dropout
from tformer.nn.embedding import check_token_ids
from tformer.nn.feedforward import ACTIVATIONS

FAMILY = "bert"  # the name BERT models' checkpoint formats are registered under


@dataclass
class BertConfig(JsonConfig):
    """BERT's shape. Defaults are BERT-base (Devlin et al., 2019, section 3)."""

    vocab_size: int = 30522
    d_model: int = 768
    num_layers: int = 12
    num_heads: int = 12
    d_ff: int = 3072
    max_len: int = 512  # learned positions
    num_segments: int = 2  # segment (token type) embeddings: sentence A / sentence B
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation: str = "gelu"
    norm_eps: float = 1e-12
    init_std: float = 0.02
    pad_id: int = 0
    labels: list[str] = field(default_factory=list)  # class names of a classification head, index = class id
    classifier_dropout: float | None = None  # None: use ``dropout``

    def __post_init__(self) -> None:
        require_positive(self, "vocab_size", "d_model", "num_layers", "num_heads", "d_ff", "max_len", "num_segments")
        require_probability(self, "dropout", "attention_dropout")
        if self.classifier_dropout is not None:
            require_probability(self, "classifier_dropout")
        if self.d_model % self.num_heads != 0:
            raise ConfigError(
                f"d_model must be divisible by num_heads, got d_model={self.d_model}, num_heads={self.num_heads}"
            )
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if not 0 <= self.pad_id < self.vocab_size:
            raise ConfigError(f"pad_id must be a valid token id below vocab_size={self.vocab_size}, got {self.pad_id}")
        if len(set(self.labels)) != len(self.labels):
            raise ConfigError(f"labels must be distinct, got {self.labels}")


@dataclass
class BertOutput:
    last_hidden_state: Tensor  # (batch, seq, d_model)
    pooler_output: Tensor  # (batch, d_model): tanh(W · hidden of the first token)
    attentions: list[Tensor] | None = None  # per layer (batch, heads, seq, seq), when asked for


@dataclass
class SequenceClassifierOutput:
    logits: Tensor  # (batch, num_labels)
    loss: Tensor | None = None  # mean cross-entropy, when labels were given
    attentions: list[Tensor] | None = None


class BertEmbeddings(nn.Module):
    """Token + learned position + segment embeddings, then LayerNorm and dropout."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        c = config
        self.tokens = TokenEmbedding(c.vocab_size, c.d_model, c.pad_id, scale=False)
        self.positions = PositionalEncoding(c.d_model, c.max_len, dropout=0.0, learned=True)
        self.segments = nn.Embedding(c.num_segments, c.d_model)
        self.norm = nn.LayerNorm(c.d_model, eps=c.norm_eps)
        self.dropout = Dropout(c.dropout)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor) -> Tensor:
        """input_ids, token_type_ids: (batch, seq) -> (batch, seq, d_model)."""
        x = self.tokens(input_ids) + self.segments(token_type_ids)  # (batch, seq, d_model)
        return self.dropout(self.norm(self.positions(x)))


class Pooler(nn.Module):
    """tanh(W h + b) on the first token's ([CLS]) final hidden state: BERT's sentence representation."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.linear = nn.Linear(d_model, d_model)

    def forward(self, hidden: Tensor) -> Tensor:
        """hidden: (batch, seq, d_model) -> (batch, d_model)."""
        return torch.tanh(self.linear(hidden[:, 0]))


class BertModel(nn.Module):
    """BERT encoder: embeddings -> N post-norm encoder layers (GELU feed-forward) -> pooler."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = c = config
        self.embeddings = BertEmbeddings(c)
        layers = [
            EncoderLayer(
                c.d_model, c.num_heads, c.d_ff, dropout=c.dropout, attention_dropout=c.attention_dropout,
                activation=c.activation, norm_first=False, norm_eps=c.norm_eps,
            )
            for _ in range(c.num_layers)
        ]
        self.encoder = Encoder(layers)
        self.pooler = Pooler(c.d_model)
        init_bert_weights(self, c.init_std)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        need_weights: bool = False,
        output_attentions: bool = False,
    ) -> BertOutput:
        """Encode a batch of token ids.

        Args:
            input_ids: token ids, starting with [CLS] as the tokenizer makes them.
            attention_mask: 1/True = real token, 0/False = padding. Default: all real.
            token_type_ids: segment of each token (0 = first sentence, 1 = second). Default: all 0.
            need_weights: also return every layer's attention weights (``output_attentions`` is the Hugging Face
                name for the same switch).
        Shapes:
            input_ids, attention_mask, token_type_ids: (batch, seq).
        Returns:
            BertOutput with last_hidden_state (batch, seq, d_model), pooler_output (batch, d_model) and, when
            asked for, attentions: per layer (batch, heads, seq, seq).
        """
        check_inputs(input_ids, attention_mask, token_type_ids, self.config)
        need_weights = need_weights or output_attentions
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        mask = None if attention_mask is None else attention_mask.bool()  # True = real token
        hidden = self.embeddings(input_ids, token_type_ids)
        hidden, weights = self.encoder(hidden, mask, need_weights)  # (batch, seq, d_model)
        return BertOutput(hidden, self.pooler(hidden), weights if need_weights else None)

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, strict: bool = True) -> BertModel:
        """Load a Hugging Face BERT checkpoint folder (or a short name such as ``"minilm"``).

        ``strict=False`` keeps freshly initialised weights where the checkpoint lacks some (and says which).
        """
        return load_checkpoint(FAMILY, cls, name_or_path, strict=strict)

    def save_pretrained(self, folder: str | Path) -> None:
        """Write ``config.json`` and ``model.safetensors`` that ``transformers.AutoModel`` can load."""
        save_checkpoint(FAMILY, self, folder)


class BertForSequenceClassification(nn.Module):
    """BERT with a classification head on the pooled output: dropout, then one linear layer to class logits."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        if len(config.labels) < 2:
            raise ConfigError(f"a classifier needs at least two labels, got {config.labels}")
        self.config = config
        self.bert = BertModel(config)
        p = config.dropout if config.classifier_dropout is None else config.classifier_dropout
        self.dropout = Dropout(p)
        self.classifier = nn.Linear(config.d_model, len(config.labels))
        init_bert_weights(self.classifier, config.init_std)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        labels: Tensor | None = None,
        need_weights: bool = False,
        output_attentions: bool = False,
    ) -> SequenceClassifierOutput:
        """Class logits for each sequence.

        Args:
            input_ids, attention_mask, token_type_ids: as for ``BertModel.forward``, (batch, seq).
            labels: class ids (batch,); when given, the mean cross-entropy is returned as ``loss``.
            need_weights / output_attentions: also return every layer's attention weights as ``attentions``.
        Returns:
            SequenceClassifierOutput with logits (batch, num_labels).
        """
        out = self.bert(input_ids, attention_mask, token_type_ids, need_weights or output_attentions)
        logits = self.classifier(self.dropout(out.pooler_output))  # (batch, num_labels)
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(logits, loss, out.attentions)

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | Path, labels: list[str] | None = None, strict: bool = True,
        num_labels: int | None = None,
    ) -> BertForSequenceClassification:
        """Load a saved classifier, or put a new head (for ``labels``) on a pretrained encoder checkpoint.
        ``num_labels=N`` (Hugging Face's habit) names the classes LABEL_0 .. LABEL_N-1."""
        if num_labels is not None:
            if labels is not None and len(labels) != num_labels:
                raise ValueError(f"num_labels={num_labels} but {len(labels)} labels given: {labels}")
            labels = labels or [f"LABEL_{i}" for i in range(num_labels)]
        return load_checkpoint(FAMILY, cls, name_or_path, labels=labels, strict=strict)

    def save_pretrained(self, folder: str | Path) -> None:
        """Write a folder that ``transformers.AutoModelForSequenceClassification`` can load."""
        save_checkpoint(FAMILY, self, folder)


def init_bert_weights(module: nn.Module, std: float) -> None:
    """BERT's initialisation: normal(0, std) for weights and embeddings, zero biases, unit LayerNorm."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.Embedding, TokenEmbedding)):
            nn.init.normal_(m.weight, std=std)
        elif isinstance(m, PositionalEncoding) and m.learned:
            nn.init.normal_(m.table, std=std)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        if isinstance(m, TokenEmbedding) and m.pad_id is not None:
            with torch.no_grad():
                m.weight[m.pad_id].zero_()


def check_inputs(
    input_ids: Tensor, attention_mask: Tensor | None, token_type_ids: Tensor | None, config: BertConfig
) -> None:
    """Shapes and id ranges at the model's public boundary, with errors that show expected against actual."""
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be (batch, seq), got shape {tuple(input_ids.shape)}")
    for name, t in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
        if t is not None and t.shape != input_ids.shape:
            raise ValueError(f"{name} must have the shape of input_ids {tuple(input_ids.shape)}, got {tuple(t.shape)}")
    if input_ids.size(1) > config.max_len:
        raise ValueError(
            f"sequence length {input_ids.size(1)} exceeds the model's {config.max_len} positions; "
            "truncate the input (the tokenizer's max_length)"
        )
    check_token_ids(input_ids, config.vocab_size)
    if token_type_ids is not None and token_type_ids.numel():
        low, high = int(token_type_ids.min()), int(token_type_ids.max())
        if low < 0 or high >= config.num_segments:
            raise ValueError(f"token_type_ids must lie in [0, {config.num_segments}), got values {low}..{high}")
