"""Fine-tuning: a tiny BERT learns a toy sentiment task; the best checkpoint is a Hugging Face-compatible folder;
a frozen encoder trains only the head; ``max_steps`` stops early and still saves."""

import json

import pytest
import torch

from tformer.errors import ConfigError, DataError
from tformer.models.bert import BertForSequenceClassification, BertModel
from tformer.training.finetune import FinetuneConfig, finetune

from tests.models.bert_helpers import save_tiny_encoder, write_toy_sentiment


@pytest.fixture
def toy_setup(tmp_path):
    (tmp_path / "data").mkdir()
    write_toy_sentiment(tmp_path / "data")
    save_tiny_encoder(tmp_path / "encoder")
    return tmp_path


def toy_config(root, **overrides) -> FinetuneConfig:
    fields = dict(model=str(root / "encoder"), data=str(root / "data"), out=str(root / "run"), epochs=12,
                  batch_size=16, lr=2e-3, warmup_ratio=0.1, max_length=16, seed=0, threads=1)
    fields.update(overrides)
    return FinetuneConfig(**fields)


def test_tiny_bert_learns_toy_sentiment_and_keeps_the_best_checkpoint(toy_setup):
    result = finetune(toy_config(toy_setup), progress=False)
    accuracies = [row["accuracy"] for row in result.history]
    assert len(accuracies) == 12
    assert max(accuracies) >= 0.9 and result.best_metrics["accuracy"] == max(accuracies)
    assert result.best == toy_setup / "run" / "best"
    saved = json.loads((result.best / "eval_results.json").read_text())
    assert saved["accuracy"] == max(accuracies) and "macro_f1" in saved
    lines = (toy_setup / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == list(range(1, 13))
    config = json.loads((result.best / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"] and config["model_type"] == "bert"
    assert config["id2label"] == {"0": "0", "1": "1"}


def test_best_checkpoint_loads_in_transformers_with_the_same_logits(toy_setup):
    transformers = pytest.importorskip("transformers")
    best = finetune(toy_config(toy_setup, epochs=1), progress=False).best
    ours = BertForSequenceClassification.from_pretrained(best)
    theirs = transformers.AutoModelForSequenceClassification.from_pretrained(best).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(best)
    batch = tokenizer(["the movie was great", "a dull , boring story"], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert (ours(**batch).logits - theirs(**batch).logits).abs().max() < 1e-5


def test_freeze_encoder_trains_only_the_head(toy_setup):
    before = BertModel.from_pretrained(toy_setup / "encoder")
    result = finetune(toy_config(toy_setup, epochs=1, freeze_encoder=True), progress=False)
    after = BertForSequenceClassification.from_pretrained(result.best)
    for (name, a), b in zip(before.state_dict().items(), after.bert.state_dict().values()):
        assert torch.equal(a, b), name


def test_frozen_word_embeddings_stay_as_loaded_and_the_rest_trains(toy_setup):
    before = BertModel.from_pretrained(toy_setup / "encoder").state_dict()
    config = toy_config(toy_setup, epochs=1, freeze_word_embeddings=True, precision="bf16")
    after = BertForSequenceClassification.from_pretrained(finetune(config, progress=False).best).bert.state_dict()
    assert torch.equal(after["embeddings.tokens.weight"], before["embeddings.tokens.weight"])
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert "encoder.layers.0.ffn.linear1.weight" in changed and "embeddings.positions.table" in changed


@pytest.mark.parametrize("bad", [dict(freeze_word_embeddings=True, lora=True),
                                 dict(freeze_word_embeddings=True, freeze_encoder=True), dict(precision="fp16")])
def test_incompatible_fine_tuning_options_are_refused(bad):
    with pytest.raises(ConfigError, match="freeze-word-embeddings|precision"):
        FinetuneConfig(**bad)


def test_max_steps_stops_early_evaluates_and_saves(toy_setup):
    result = finetune(toy_config(toy_setup, max_steps=3), progress=False)
    assert [row["step"] for row in result.history] == [3]
    assert (result.best / "model.safetensors").is_file()


def test_output_folder_is_not_overwritten_unless_asked(toy_setup):
    (toy_setup / "run").mkdir()
    (toy_setup / "run" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="is not empty"):
        finetune(toy_config(toy_setup, max_steps=1), progress=False)
    finetune(toy_config(toy_setup, max_steps=1), progress=False, overwrite=True)


def test_unknown_dev_label_stops_before_training(toy_setup):
    with open(toy_setup / "data" / "dev.txt", "a") as f:
        f.write("7 a mystery\n")
    with pytest.raises(DataError, match=r"dev\.txt:33: label '7'"):
        finetune(toy_config(toy_setup), progress=False)


def test_config_round_trips_and_validates(tmp_path):
    config = FinetuneConfig(epochs=2, freeze_encoder=True)
    assert FinetuneConfig.from_json(config.to_json()) == config
    with pytest.raises(ConfigError, match="both train_file and dev_file"):
        FinetuneConfig(train_file="a.txt")
    with pytest.raises(ConfigError, match="warmup_ratio"):
        FinetuneConfig(warmup_ratio=1.5)
