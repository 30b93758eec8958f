"""No checkpoint path ever unpickles arbitrary objects."""

import os

import pytest
import torch

from tformer.errors import ModelFolderError
from tformer.models.bert import BertModel

from tests.models.bert_helpers import save_tiny_encoder


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # runs os.system(...) when unpickled by a permissive loader
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_in_pytorch_model_bin_is_refused(tmp_path):
    folder = save_tiny_encoder(tmp_path / "model")
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "pwned"
    torch.save({"embeddings.word_embeddings.weight": _Exploit(marker)}, folder / "pytorch_model.bin")
    with pytest.raises(ModelFolderError, match="cannot read weights"):
        BertModel.from_pretrained(folder)
    assert not marker.exists()
    torch.load(folder / "pytorch_model.bin", weights_only=False)  # the file really is an exploit: what we never do
    assert marker.exists()
