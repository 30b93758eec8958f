"""No checkpoint path ever unpickles arbitrary objects."""

import json
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

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
    with pytest.raises(ModelFolderError) as refused:
        BertModel.from_pretrained(folder)
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"{folder / 'pytorch_model.bin'}: refused")
    assert "tformer does not load pickled weights" in message and "safetensors" in message
    assert not marker.exists()
    torch.load(folder / "pytorch_model.bin", weights_only=False)  # the file really is an exploit: what we never do
    assert marker.exists()


@pytest.mark.parametrize("index, problem", [
    ({"metadata": {}}, "no weight_map"),
    ({"weight_map": {}}, "no weight_map"),
    ({"weight_map": {"a": "pytorch_model.bin.index.json"}}, "expected weight files"),
    ({"weight_map": {"a": "other.index.json"}}, "expected weight files"),
    ({"weight_map": {"a": "../elsewhere/model.safetensors"}}, "expected weight files"),
])
def test_a_sharded_index_without_a_usable_weight_map_is_one_line(tmp_path, index, problem):
    folder = save_tiny_encoder(tmp_path / "model")
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps(index))
    with pytest.raises(ModelFolderError) as refused:
        BertModel.from_pretrained(folder)
    message = str(refused.value)
    assert message.startswith(f"{folder / 'pytorch_model.bin.index.json'}: ") and problem in message
    assert "\n" not in message


def test_a_sharded_index_loads_its_shards(tmp_path):
    folder = save_tiny_encoder(tmp_path / "model")
    expected = BertModel.from_pretrained(folder).state_dict()
    tensors = load_file(str(folder / "model.safetensors"))
    names = sorted(tensors)
    halves = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for shard, keys in halves.items():
        save_file({k: tensors[k] for k in keys}, str(folder / shard))
    (folder / "model.safetensors").unlink()
    weight_map = {k: shard for shard, keys in halves.items() for k in keys}
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    loaded = BertModel.from_pretrained(folder).state_dict()
    assert all(torch.equal(loaded[k], expected[k]) for k in expected)
