"""BERT for extractive question answering: the encoder with a span head that scores every token as the start and
the end of the answer (Devlin et al., 2019, section 4.2), in Hugging Face's format (``qa_outputs``).

A saved folder loads in ``transformers.AutoModelForQuestionAnswering``. A fine-tuned model can also be stored as
an *adapter*: only the parameters fine-tuning changed, in float16, on top of a named base checkpoint (the bundled
QA model is shipped that way, on the packaged MiniLM).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from tformer.models.adapter import ADAPTER_FILE, apply_adapter, read_adapter_meta, save_adapter
from tformer.models.bert import BertConfig, BertModel, init_bert_weights
from tformer.models.formats import load_checkpoint, save_checkpoint
from tformer.pretrained import resolve_pretrained

log = logging.getLogger("tformer")

# The name of this model's checkpoint formats (models/formats.py): Hugging Face's folders are read and written by
# tformer.interop.hf_bert, which registers itself when tformer is imported.
FAMILY = "bert_qa"
# Weights a question-answering model does not need from its checkpoint: Hugging Face's QA model has no pooler,
# and an encoder checkpoint has no span head yet.
OPTIONAL_PREFIXES = ("bert.pooler.", "qa_outputs.")


@dataclass
class QuestionAnsweringOutput:
    start_logits: Tensor  # (batch, seq)
    end_logits: Tensor  # (batch, seq)
    loss: Tensor | None = None  # mean of the start and end cross-entropies, when positions were given
    attentions: list[Tensor] | None = None


class BertForQuestionAnswering(nn.Module):
    """BERT with a span head: one linear layer from each token's final hidden state to a start and an end logit."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.bert = BertModel(config)
        self.qa_outputs = nn.Linear(config.d_model, 2)  # [start, end]
        init_bert_weights(self.qa_outputs, config.init_std)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        start_positions: Tensor | None = None,
        end_positions: Tensor | None = None,
        need_weights: bool = False,
        output_attentions: bool = False,
    ) -> QuestionAnsweringOutput:
        """Start and end logits of every token.

        Args:
            input_ids, attention_mask, token_type_ids: as for ``BertModel.forward``: ``[CLS] question [SEP]
                context [SEP]`` with segment 0 for the question and 1 for the context.
            start_positions, end_positions: token index of the answer's first and last token (batch,); when
                given, ``loss`` is the mean of the two cross-entropies. Position 0 ([CLS]) means "no answer in
                this window".
        Shapes:
            input_ids, attention_mask, token_type_ids: (batch, seq).
        Returns:
            QuestionAnsweringOutput with start_logits and end_logits (batch, seq).
        """
        out = self.bert(input_ids, attention_mask, token_type_ids, need_weights or output_attentions)
        logits = self.qa_outputs(out.last_hidden_state)  # (batch, seq, 2)
        start_logits, end_logits = logits.unbind(dim=-1)  # (batch, seq) each
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = (nn.functional.cross_entropy(start_logits, start_positions)
                    + nn.functional.cross_entropy(end_logits, end_positions)) / 2
        return QuestionAnsweringOutput(start_logits, end_logits, loss, out.attentions)

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, strict: bool = True) -> BertForQuestionAnswering:
        """A saved QA model, an adapter folder (``adapter.json``), or an encoder checkpoint that gets a new span
        head (said in one line)."""
        folder = resolve_pretrained(name_or_path)
        if (folder / ADAPTER_FILE).is_file():
            return load_adapter(folder)
        return load_checkpoint(FAMILY, cls, folder, strict=strict)

    def save_pretrained(self, folder: str | Path) -> None:
        """Write ``config.json`` and ``model.safetensors`` that ``transformers.AutoModelForQuestionAnswering`` loads
        (without the pooler, which the span head does not use and Hugging Face's QA model does not have)."""
        save_checkpoint(FAMILY, self, folder)

    def save_adapter(self, folder: str | Path, base: str, names: list[str], dtype: torch.dtype = torch.float16) -> None:
        """Write only the parameters ``names`` (tformer names) in ``dtype``, to be loaded on top of ``base`` (a
        checkpoint folder or short name); ``tformer.models.adapter``."""
        save_adapter(self, folder, base, names, dtype)


def load_adapter(folder: Path) -> BertForQuestionAnswering:
    """The base checkpoint named in ``adapter.json`` with the adapter's parameters put over it (in float32)."""
    return apply_adapter(BertForQuestionAnswering.from_pretrained(read_adapter_meta(folder)["base"]), folder)
