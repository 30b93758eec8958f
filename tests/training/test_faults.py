"""A training run under faults: a second run on the same folder, damaged files, leftovers of a kill, a finished run
resumed, a run that stops before its first evaluation, permissions, and a full disk."""

import errno
import hashlib
import os
import signal
import stat
import subprocess
import sys

import pytest

from tformer.decoding.translator import Translator
from tformer.errors import ModelFolderError
from tformer.files import CHECKSUMS, read_json, verify_checksums, write_checksums
from tformer.training import checkpoint as ckpt
from tformer.training.lock import OutputFolderBusyError
from tformer.training.trainer import Trainer

from tests.training.conftest import tiny_recipe


def file_digests(folder):
    """SHA-256 of every file under ``folder`` but the lock (it holds the owner's process id)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory, small_data_root):
    """A finished run of 6 updates (evaluations at 3 and 6), copied afresh by each test that changes it."""
    out = tmp_path_factory.mktemp("finished") / "run"
    Trainer(tiny_recipe(small_data_root, max_steps=6), out, progress=False).train()
    return out


@pytest.fixture
def run(finished, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(finished, copy)
    return copy


# ---- one run per folder ---------------------------------------------------------------------------------------

def test_a_second_run_on_the_same_folder_fails_at_once_naming_it_and_the_owner(tmp_path, small_data_root):
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", "import time; from tformer.training.lock import OutputLock; "
                               f"held = OutputLock({str(out)!r}).acquire(); print('held',flush=True); time.sleep(99)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputFolderBusyError) as busy:
            Trainer(tiny_recipe(small_data_root, max_steps=3, seed=7), out, progress=False)
        assert str(out) in str(busy.value) and f"process {holder.pid}" in str(busy.value)
        assert not (out / "recipe.json").exists()  # it wrote nothing
    finally:
        holder.send_signal(signal.SIGKILL)  # a crash: the OS drops the lock, the .lock file stays
        holder.wait()
    assert (out / ".lock").is_file()
    final = Trainer(tiny_recipe(small_data_root, max_steps=3), out, progress=False).train()
    assert final.is_dir()


def test_the_same_process_cannot_open_a_folder_twice_until_the_first_run_ends(tmp_path, small_data_root):
    first = Trainer(tiny_recipe(small_data_root, max_steps=3), tmp_path, progress=False)
    with pytest.raises(OutputFolderBusyError, match=f"process {os.getpid()}"):
        Trainer(tiny_recipe(small_data_root, max_steps=3, seed=5), tmp_path, progress=False)
    first.train()
    Trainer(tiny_recipe(small_data_root, max_steps=3), tmp_path, resume=True, progress=False)


# ---- checksums of model folders -------------------------------------------------------------------------------

def test_final_and_best_carry_checksums_and_flipped_bytes_fail_naming_the_file(run):
    for name in ("final", "best"):
        assert verify_checksums(run / name)
    weights = run / "final" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x10  # one flipped bit inside a tensor: safetensors itself would not notice
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFolderError) as err:
        Translator.from_pretrained(run / "final")
    assert str(err.value).startswith(f"{weights}: corrupted (checksum mismatch")
    assert "\n" not in str(err.value)


def test_the_bundled_model_carries_checksums_of_its_model_files():
    from tformer.decoding.translator import default_model_dir

    folder = default_model_dir()
    listed = set(read_json(folder / CHECKSUMS))
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation.json"} <= listed
    assert verify_checksums(folder)


# ---- leftovers that must not block a resume -------------------------------------------------------------------

def test_a_torn_last_metrics_line_is_dropped_with_a_warning(run, small_data_root, capsys):
    rows = (run / "metrics.jsonl").read_text()
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"kind": "train", "st')  # killed mid-write
    Trainer(tiny_recipe(small_data_root, max_steps=6), run, resume=True, progress=False).train()
    assert "dropped its torn last line" in capsys.readouterr().err
    assert (run / "metrics.jsonl").read_text() == rows


@pytest.mark.parametrize("damage", ["garbage checksums.json", "checksums.json listing a missing file",
                                    "garbage trainer_state.json with matching checksums"])
def test_any_damage_in_the_newest_checkpoint_falls_back_to_the_one_before(run, small_data_root, capsys, damage):
    newest = run / "checkpoints" / "step-00000006"
    if damage == "garbage checksums.json":
        (newest / CHECKSUMS).write_bytes(b"\x00\x13garbage{")
    elif damage == "checksums.json listing a missing file":
        (newest / ckpt.OPTIMIZER).unlink()
    else:
        (newest / ckpt.STATE).write_text("{not json")
        write_checksums(newest)  # the checksums match, so only the content is wrong
    resumed = Trainer(tiny_recipe(small_data_root, max_steps=6), run, resume=True, progress=False)
    assert resumed.state.step == 3
    assert "skipping checkpoint step-00000006" in capsys.readouterr().err


def test_a_truncated_run_tokenizer_is_restored_from_a_checkpoint(run, small_data_root, capsys):
    tokenizer = run / "tokenizer.json"
    good = tokenizer.read_bytes()
    tokenizer.write_bytes(good[: len(good) // 3])
    Trainer(tiny_recipe(small_data_root, max_steps=6), run, resume=True, progress=False)
    assert tokenizer.read_bytes() == good
    assert "restored it from step-00000006" in capsys.readouterr().err


def test_staging_folders_left_by_a_kill_are_removed_on_the_next_start(run, small_data_root, capsys):
    leftovers = [run / "checkpoints" / ".step-00000009.k3j_x9a2", run / ".best.0f2q8mzz", run / ".final.a1b2c3d4"]
    for folder in leftovers:
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"")
    (run / ".metrics.jsonl.tmp-123").write_text("x")
    Trainer(tiny_recipe(small_data_root, max_steps=6), run, resume=True, progress=False)
    assert not any(p.exists() for p in leftovers) and not (run / ".metrics.jsonl.tmp-123").exists()
    assert "removed checkpoints/.step-00000009.k3j_x9a2" in capsys.readouterr().err


# ---- ends of runs -----------------------------------------------------------------------------------------------

def test_resuming_a_finished_run_trains_no_further_and_gives_the_same_files(run, small_data_root, capsys):
    before = file_digests(run)
    resumed = Trainer(tiny_recipe(small_data_root, max_steps=6), run, resume=True, progress=False)
    resumed.train()
    assert resumed.state.step == 6
    assert file_digests(run) == before


def test_max_steps_before_the_first_evaluation_still_finishes(tmp_path, small_data_root):
    recipe = tiny_recipe(small_data_root, max_steps=2, eval_every=0, epochs=3)  # evaluation only at epoch end
    final = Trainer(recipe, tmp_path, progress=False).train()
    assert verify_checksums(final)
    assert [c.name for c in (tmp_path / "checkpoints").iterdir()] == ["step-00000002"]
    assert '"kind": "eval", "step": 2' in (tmp_path / "metrics.jsonl").read_text()


@pytest.mark.parametrize("umask, folder_mode, file_mode", [(0o022, 0o755, 0o644), (0o027, 0o750, 0o640)])
def test_trained_folders_get_the_usual_permissions(run, small_data_root, umask, folder_mode, file_mode):
    old = os.umask(umask)
    try:
        Trainer(tiny_recipe(small_data_root, max_steps=6), run, resume=True, progress=False).train()
    finally:
        os.umask(old)
    for folder in (run / "final", run / "averaged"):  # written again by the resumed run, under this umask
        assert stat.S_IMODE(folder.stat().st_mode) == folder_mode, folder
        for path in folder.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == file_mode, path


def test_a_full_disk_names_the_folder_and_leaves_no_empty_files(tmp_path, small_data_root, monkeypatch):
    def full(folder, *args, **kwargs):
        (folder / ckpt.OPTIMIZER).touch()  # created, then nothing more fits
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ckpt, "save_training_state", full)
    with pytest.raises(OSError) as err:
        Trainer(tiny_recipe(small_data_root, max_steps=6), tmp_path, progress=False).train()
    assert err.value.errno == errno.ENOSPC
    assert str(tmp_path / "checkpoints" / "step-00000003") in str(err.value)
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != ".lock"]
    assert files and not [p for p in files if p.stat().st_size == 0]
    assert not [p for p in tmp_path.rglob(".*") if p.is_dir()]  # no staging folder left behind


def test_fine_tuning_takes_the_same_lock(tmp_path):
    from tformer.training.finetune import Finetuner

    from tests.models.bert_helpers import save_tiny_encoder, write_toy_sentiment
    from tests.training.test_finetune import toy_config

    (tmp_path / "data").mkdir()
    write_toy_sentiment(tmp_path / "data")
    save_tiny_encoder(tmp_path / "encoder")
    first = Finetuner(toy_config(tmp_path, max_steps=1), progress=False)
    with pytest.raises(OutputFolderBusyError, match=f"process {os.getpid()}"):
        Finetuner(toy_config(tmp_path, max_steps=1, seed=3), progress=False, overwrite=True)
    best = first.train().best
    assert verify_checksums(best) and stat.S_IMODE(best.stat().st_mode) == 0o777 & ~current_umask()
    Finetuner(toy_config(tmp_path, max_steps=1), progress=False, overwrite=True).train()  # released at the end


def current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def test_the_cli_run_writes_its_curves_without_leaving_temporary_files(tmp_path, small_data_root):
    from tformer.cli.main import main

    config = tmp_path / "recipe.json"
    tiny_recipe(small_data_root, max_steps=3).to_json(config)
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    curves = tmp_path / "run" / "curves.png"
    assert curves.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "run").iterdir() if p.name.startswith(".")) == [".lock"]


def test_saving_over_a_checksummed_folder_drops_the_stale_checksums(run):
    translator = Translator.from_pretrained(run / "final")
    translator.length_penalty = 0.5
    translator.save_pretrained(run / "final")  # the user's own save, on purpose
    assert not (run / "final" / CHECKSUMS).exists()
    assert Translator.from_pretrained(run / "final").length_penalty == 0.5


def test_a_full_disk_while_logging_names_the_metrics_file_and_leaves_no_empty_one(tmp_path, monkeypatch):
    import builtins

    from tformer.training.metrics import MetricsLog

    real_open = builtins.open

    class FullFile:
        def __init__(self, file):
            self.file = file

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, text):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(builtins, "open", lambda path, *a, **k: FullFile(real_open(path, *a, **k)))
    log = MetricsLog(tmp_path / "metrics.jsonl")
    with pytest.raises(OSError) as err:
        log.append({"kind": "eval", "step": 3})
    monkeypatch.undo()
    assert err.value.errno == errno.ENOSPC and str(tmp_path / "metrics.jsonl") in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_question_answering_fine_tuning_takes_the_same_lock(tmp_path):
    from tformer.training.finetune_qa import QAFinetuneConfig, QAFinetuner
    from tformer.training.lock import OutputLock

    held = OutputLock(tmp_path / "qa").acquire()
    config = QAFinetuneConfig(out=str(tmp_path / "qa"), train_file=str(tmp_path / "none.json"),
                              dev_file=str(tmp_path / "none.json"))
    with pytest.raises(OutputFolderBusyError, match=f"{tmp_path / 'qa'} is in use .*process {os.getpid()}"):
        QAFinetuner(config, progress=False)
    held.release()
    with pytest.raises(Exception, match="none.json"):  # past the lock, the missing data is the next error
        QAFinetuner(config, progress=False)


def test_curves_of_a_run_with_a_torn_last_line_are_drawn(run, capsys):
    from tformer.cli.main import main

    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"kind": "eval", "step": 9, "val_lo')  # what a reader sees while the run writes
    assert main(["curves", str(run), "--out", str(run / "now.png")]) == 0
    assert (run / "now.png").read_bytes()[:4] == b"\x89PNG"
    (run / "metrics.jsonl").write_text('{"kind": "eval"\n{"kind": "eval", "step": 3}\n')
    assert main(["curves", str(run)]) == 1
    assert f"{run / 'metrics.jsonl'}:1: not a JSON row" in capsys.readouterr().err
