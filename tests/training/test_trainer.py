import json

import pytest
import torch
from safetensors.torch import load_file

from tformer.training import checkpoint as ckpt
from tformer.training.trainer import Trainer, TrainingError

from tests.training.conftest import tiny_recipe


def _weights(folder):
    return load_file(str(folder / ckpt.WEIGHTS))


def test_resume_reaches_the_same_parameters_as_an_uninterrupted_run(tmp_path, small_data_root):
    straight = Trainer(tiny_recipe(small_data_root, max_steps=6), tmp_path / "a", progress=False)
    straight.train()
    Trainer(tiny_recipe(small_data_root, max_steps=3), tmp_path / "b", progress=False).train()
    resumed = Trainer(tiny_recipe(small_data_root, max_steps=6), tmp_path / "b", resume=True, progress=False)
    assert resumed.state.step == 3
    resumed.train()
    a, b = _weights(tmp_path / "a/checkpoints/step-00000006"), _weights(tmp_path / "b/checkpoints/step-00000006")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=0)
    assert a["encoder.layers.0.ffn.linear1.weight"].ne(_weights(tmp_path / "b/checkpoints/step-00000003")[
        "encoder.layers.0.ffn.linear1.weight"]).any()  # training did move the weights


def test_run_writes_metrics_curves_and_a_loadable_final_model(tmp_path, small_data_root):
    from tformer.decoding.translator import Translator
    from tformer.viz.curves import plot_training_curves

    calls = []

    def draw_curves(metrics):  # what `tformer train` passes: training/ itself draws nothing
        calls.append(len(metrics.read_text().splitlines()))
        plot_training_curves(metrics, tmp_path / "curves.png")

    final = Trainer(tiny_recipe(small_data_root, max_steps=6), tmp_path, progress=False,
                    callbacks=[draw_curves]).train()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "eval"] == [3, 6]
    assert len(calls) == 3 and calls[-1] == len(rows)  # after each evaluation, and at the end with every row
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    assert len(Translator.from_pretrained(final).translate(["Ein Mann.", ""], beam=2)) == 2
    ckpt.verify_folder(final)


def test_corrupted_newest_checkpoint_falls_back_to_the_previous(tmp_path, small_data_root, capsys):
    Trainer(tiny_recipe(small_data_root, max_steps=6), tmp_path, progress=False).train()
    newest = tmp_path / "checkpoints/step-00000006" / ckpt.WEIGHTS
    newest.write_bytes(newest.read_bytes()[:-100])  # truncated
    with pytest.raises(Exception, match="checksum mismatch"):
        ckpt.verify_folder(newest.parent)
    resumed = Trainer(tiny_recipe(small_data_root, max_steps=6), tmp_path, resume=True, progress=False)
    assert resumed.state.step == 3
    assert "corrupted" in capsys.readouterr().err


def test_non_finite_loss_stops_with_a_clear_message(tmp_path, small_data_root, monkeypatch):
    import tformer.training.losses as losses_module

    def nan_loss(logits, target, smoothing, pad_id):
        return logits.sum() * float("nan"), logits.sum()

    trainer = Trainer(tiny_recipe(small_data_root, max_steps=2), tmp_path / "stop", progress=False)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    monkeypatch.setattr(losses_module, "label_smoothed_nll_loss", nan_loss)  # what the trainer's batch_loss calls
    with pytest.raises(TrainingError, match="non-finite loss at update 1"):
        trainer.train()
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, before[k])  # no NaN was written into the weights
    skipping = Trainer(tiny_recipe(small_data_root, max_steps=2, skip_nonfinite=True), tmp_path / "skip",
                       progress=False)
    skipping._update([[0, 1]])
    assert all(torch.isfinite(p).all() for p in skipping.model.parameters())


def test_existing_run_needs_resume_and_unwritable_output_is_refused(tmp_path, small_data_root):
    Trainer(tiny_recipe(small_data_root, max_steps=3), tmp_path / "r", progress=False).train()
    with pytest.raises(TrainingError, match="--resume"):
        Trainer(tiny_recipe(small_data_root, max_steps=3), tmp_path / "r", progress=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(TrainingError, match="not writable"):
        Trainer(tiny_recipe(small_data_root), tmp_path / "file" / "out", progress=False)


def test_init_from_starts_from_the_given_model_and_keeps_its_tokenizer(tmp_path, small_data_root):
    from tformer.errors import ConfigError
    from tformer.models import Seq2SeqTransformer

    first = Trainer(tiny_recipe(small_data_root, max_steps=3), tmp_path / "a", progress=False).train()
    recipe = tiny_recipe(small_data_root, max_steps=3, init_from=str(first))
    recipe.model = {"d_model": 24}  # agreeing [model] fields are allowed
    second = Trainer(recipe, tmp_path / "b", progress=False)
    loaded = Seq2SeqTransformer.from_pretrained(first).state_dict_untied()
    for name, value in second.model.state_dict_untied().items():
        torch.testing.assert_close(value, loaded[name], atol=0, rtol=0)
    assert (tmp_path / "b/tokenizer.json").read_text() == (first / "tokenizer.json").read_text()
    assert second.model.training
    recipe.model = {"d_model": 32}
    with pytest.raises(ConfigError, match="d_model"):
        Trainer(recipe, tmp_path / "c", progress=False)
    recipe.model = {"d_model": 24}
    recipe.tokenizer.split_digits = True  # the 300 sliced pairs hold only the digits 0 and 3
    with pytest.raises(ConfigError, match="split_digits .* lacks the tokens 1 2 4 5 6 7 8 9"):
        Trainer(recipe, tmp_path / "d", progress=False)


def test_init_from_with_split_digits_keeps_the_ids_and_splits_numbers_from_then_on(tmp_path, small_data_root):
    from tformer.text.bpe import BPETokenizer

    first = Trainer(tiny_recipe(small_data_root, max_steps=2), tmp_path / "a", progress=False).train()
    digits = BPETokenizer.train([f"Es sind {n} Hunde." for n in range(100, 400)], vocab_size=300, min_frequency=1)
    assert not digits.splits_digits
    digits.save_pretrained(first)  # a starting model whose BPE merged digits ("▁1", "23")
    (first / "checksums.json").unlink()
    recipe = tiny_recipe(small_data_root, max_steps=2, init_from=str(first))
    recipe.tokenizer.split_digits = True
    second = Trainer(recipe, tmp_path / "b", progress=False)
    assert second.tokenizer.splits_digits and second.tokenizer.vocab_size == digits.vocab_size
    assert second.tokenizer.encode("Es sind Hunde.") == digits.encode("Es sind Hunde.")
    assert BPETokenizer.from_pretrained(tmp_path / "b").tokens("Es sind 123 Hunde.")[2:6] == ["▁", "1", "2", "3"]
