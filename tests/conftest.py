import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tformer.models import Seq2SeqTransformer, TransformerConfig  # noqa: E402

# Test tensors are tiny: one thread is as fast, and leaves the other core to whatever else runs.
torch.set_num_threads(int(os.environ.get("TFORMER_TEST_THREADS", "1")))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def spread_layer_norms(module: torch.nn.Module) -> torch.nn.Module:
    """LayerNorms start at weight 1 and bias 0, which would hide a norm applied in the wrong place: draw them
    around those values instead (in place; returns ``module``)."""
    for m in module.modules():
        if isinstance(m, torch.nn.LayerNorm):
            torch.nn.init.normal_(m.weight, 1.0, 0.2)
            torch.nn.init.normal_(m.bias, 0.0, 0.2)
    return module


def tiny_config(**overrides) -> TransformerConfig:
    """Odd sizes, so a swapped axis fails loudly."""
    fields = dict(
        src_vocab_size=37, tgt_vocab_size=37, d_model=24, num_heads=3, num_encoder_layers=2, num_decoder_layers=2,
        d_ff=40, dropout=0.0, max_len=64,
    )
    fields.update(overrides)
    return TransformerConfig(**fields)


@pytest.fixture
def tiny_model() -> Seq2SeqTransformer:
    return Seq2SeqTransformer(tiny_config()).eval()
