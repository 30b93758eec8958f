"""Fine-tuning with LoRA: only adapters, head and pooler train and are stored; the stored classifier, merged on
its base at load time, scores what the run recorded; --max-minutes stops a run and still saves."""

import json

import pytest
import torch
from safetensors.torch import load_file

from tformer.data.classification import label_ids, load_dataset
from tformer.errors import ConfigError
from tformer.evaluation.classification import accuracy
from tformer.models.bert import BertModel
from tformer.models.classifiers import LORA_FILE, LORA_WEIGHTS
from tformer.models.pipelines import TextClassifier
from tformer.training.finetune import FinetuneConfig, Finetuner, finetune

from tests.models.bert_helpers import save_tiny_encoder, write_toy_sentiment


@pytest.fixture
def toy_setup(tmp_path):
    (tmp_path / "data").mkdir()
    write_toy_sentiment(tmp_path / "data")
    save_tiny_encoder(tmp_path / "encoder")
    return tmp_path


def lora_config(root, **overrides) -> FinetuneConfig:
    fields = dict(model=str(root / "encoder"), data=str(root / "data"), out=str(root / "run"), epochs=12,
                  batch_size=16, lr=2e-2, warmup_ratio=0.1, max_length=16, seed=0, threads=1, lora=True,
                  lora_rank=4, lora_alpha=8)
    fields.update(overrides)
    return FinetuneConfig(**fields)


def test_lora_run_trains_and_stores_only_the_adapter_and_head(toy_setup):
    finetuner = Finetuner(lora_config(toy_setup), progress=False)
    trainable = {n for n, p in finetuner.model.named_parameters() if p.requires_grad}
    assert trainable and all(n.endswith((".lora_a", ".lora_b")) or n.startswith(("classifier.", "bert.pooler."))
                             for n in trainable)
    result = finetuner.train()
    stored = load_file(str(result.best / LORA_WEIGHTS))
    assert set(stored) == trainable
    meta = json.loads((result.best / LORA_FILE).read_text())
    assert meta["lora"]["rank"] == 4 and meta["config"]["labels"] == ["0", "1"]
    assert not (result.best / "model.safetensors").exists()

    classifier = TextClassifier.from_pretrained(result.best)  # base encoder + adapter, merged
    _, dev, labels = load_dataset(lora_config(toy_setup).dataset())
    predicted = classifier.predict_proba(dev.texts).argmax(-1).tolist()
    assert accuracy(predicted, label_ids(dev, labels)) == pytest.approx(result.best_metrics["accuracy"])
    assert result.best_metrics["accuracy"] >= 0.8
    base = BertModel.from_pretrained(toy_setup / "encoder")
    assert torch.equal(classifier.model.bert.embeddings.tokens.weight, base.embeddings.tokens.weight)


def test_max_minutes_stops_and_saves(toy_setup):
    result = finetune(lora_config(toy_setup, epochs=50, max_minutes=1e-4), progress=False)
    assert len(result.history) == 1 and result.history[0]["step"] < 50 * 4  # stopped during the first epoch
    assert (result.best / LORA_FILE).is_file()


def test_lora_settings_are_checked():
    with pytest.raises(ConfigError, match="not both"):
        FinetuneConfig(lora=True, freeze_encoder=True)
    with pytest.raises(ConfigError, match="no linear layer|no LoRA target"):
        FinetuneConfig(lora=True, lora_targets=" , ")
    with pytest.raises(ConfigError):
        FinetuneConfig(lora=True, lora_rank=0)


def test_a_lora_folder_as_model_continues_its_adapters(toy_setup):
    first = finetune(lora_config(toy_setup, epochs=2), progress=False).best
    before = load_file(str(first / LORA_WEIGHTS))
    again = Finetuner(lora_config(toy_setup, model=str(first), out=str(toy_setup / "run2"), epochs=1, lora_rank=2),
                      progress=False)
    assert again.config.lora_rank == 4  # the folder's own settings
    start = {n: p.detach().clone() for n, p in again.model.named_parameters() if p.requires_grad}
    assert set(start) == set(before) and all(torch.equal(start[n], before[n]) for n in before)
    result = again.train()
    meta = json.loads((result.best / LORA_FILE).read_text())
    assert meta["base"] == str(toy_setup / "encoder")  # stored on the original base, not on the first run
    after = load_file(str(result.best / LORA_WEIGHTS))
    assert any(not torch.equal(after[n], before[n]) for n in before)
    assert TextClassifier.from_pretrained(result.best).labels == ["0", "1"]
