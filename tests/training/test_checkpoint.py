"""training/checkpoint.py: atomic folders, checksums, the optimizer round trip, and upgrading old resume state."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from tformer.errors import ModelFolderError
from tformer.training import checkpoint as ckpt
from tformer.training.optim import decays, param_groups
from tformer.training.schedule import inverse_sqrt_schedule

from tests.training.conftest import tiny_recipe


def _folder(tmp_path, name="final", text="one"):
    final = tmp_path / name
    build = ckpt.staging_dir(final)
    (build / "a.txt").write_text(text)
    save_file({"w": torch.arange(6.0).reshape(2, 3)}, str(build / ckpt.WEIGHTS))
    ckpt.commit_folder(build, final)
    return final


# ------------------------------------------------------------------------------------------------- atomic


def test_commit_replaces_the_folder_whole_and_leaves_no_staging_behind(tmp_path):
    final = _folder(tmp_path, text="one")
    ckpt.verify_folder(final)
    _folder(tmp_path, text="two")
    assert (final / "a.txt").read_text() == "two"
    ckpt.verify_folder(final)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]


def test_an_uncommitted_staging_folder_leaves_the_old_checkpoint_untouched(tmp_path):
    final = _folder(tmp_path, text="one")
    build = ckpt.staging_dir(final)  # a crash before commit_folder: a half-written staging folder
    (build / "a.txt").write_text("half")
    assert (final / "a.txt").read_text() == "one"
    ckpt.verify_folder(final)
    assert build.name.startswith(".")  # never mistaken for a step-* checkpoint


def test_write_json_atomic_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "state.json"
    ckpt.write_json_atomic(path, {"step": 1})
    with pytest.raises(TypeError):
        ckpt.write_json_atomic(path, {"step": object()})  # not JSON: fails mid-write
    assert json.loads(path.read_text()) == {"step": 1}


# ------------------------------------------------------------------------------------ corrupted, partial


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / ckpt.MANIFEST).unlink(), "incomplete checkpoint"),
    (lambda f: (f / ckpt.WEIGHTS).unlink(), "missing"),
    (lambda f: (f / ckpt.WEIGHTS).write_bytes((f / ckpt.WEIGHTS).read_bytes()[:-7]), "checksum mismatch"),
    (lambda f: (f / "a.txt").write_text("oNe"), "checksum mismatch"),
])
def test_verify_folder_names_what_is_wrong(tmp_path, damage, message):
    final = _folder(tmp_path)
    damage(final)
    with pytest.raises(ModelFolderError, match=message):
        ckpt.verify_folder(final)


# ------------------------------------------------------------------------------------------- round trip


def _tiny_model():
    return torch.nn.Sequential(torch.nn.Embedding(7, 5), torch.nn.Linear(5, 3), torch.nn.LayerNorm(3))


def _trained(optimizer_params, model, steps=3, seed=0):
    optimizer = torch.optim.AdamW(optimizer_params, lr=1e-2, weight_decay=0.0)
    scheduler = inverse_sqrt_schedule(optimizer, warmup_steps=2)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randint(0, 7, (4,), generator=generator)
        model(x).square().sum().backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    return optimizer, scheduler


def test_training_state_round_trips_through_safetensors_and_json(tmp_path):
    model = _tiny_model()
    optimizer, scheduler = _trained(param_groups(model, 0.1), model)
    rng = [torch.get_rng_state(), torch.get_rng_state()]
    ckpt.save_training_state(tmp_path, {"step": 3}, optimizer.state_dict(), scheduler.state_dict(), rng)
    state = ckpt.upgrade_checkpoint(ckpt.load_training_state(tmp_path), model)  # already current: unchanged
    assert state["format"] == ckpt.FORMAT and state["trainer"] == {"step": 3}
    assert state["scheduler"] == json.loads(json.dumps(scheduler.state_dict()))
    assert sorted(state["rng"]) == ["torch_cpu_rank0", "torch_cpu_rank1"]
    fresh = torch.optim.AdamW(param_groups(model, 0.1), lr=1e-2)
    fresh.load_state_dict(state["optimizer"])
    want, got = optimizer.state_dict(), fresh.state_dict()
    assert json.loads(json.dumps(want["param_groups"])) == json.loads(json.dumps(got["param_groups"]))
    for index, entry in want["state"].items():
        for key, value in entry.items():
            torch.testing.assert_close(got["state"][index][key], value, atol=0, rtol=0)


# ---------------------------------------------------------------------------------------------- upgrade


def _write_old_format(folder, optimizer, scheduler, rng):
    """Resume state as tformer wrote it before issue 15: one optimizer group, no "format", one "torch_cpu" RNG."""
    tensors, meta = ckpt.optimizer_to_tensors(optimizer.state_dict())
    save_file(tensors, str(folder / ckpt.OPTIMIZER))
    save_file({"torch_cpu": rng}, str(folder / ckpt.RNG))
    state = {"trainer": {"step": 3}, "optimizer": meta, "scheduler": scheduler.state_dict()}
    (folder / ckpt.STATE).write_text(json.dumps(state))


def test_old_single_group_state_upgrades_and_continues_exactly_like_the_old_optimizer(tmp_path):
    """With weight decay 0 the two layouts are the same optimizer: after the upgrade, further steps agree."""
    torch.manual_seed(0)
    old_model, new_model = _tiny_model(), _tiny_model()
    new_model.load_state_dict(old_model.state_dict())
    old_opt, old_sched = _trained(old_model.parameters(), old_model)
    new_model.load_state_dict(old_model.state_dict())
    _write_old_format(tmp_path, old_opt, old_sched, torch.get_rng_state())

    state = ckpt.upgrade_checkpoint(ckpt.load_training_state(tmp_path), new_model)
    assert state["format"] == ckpt.FORMAT and list(state["rng"]) == ["torch_cpu_rank0"]
    new_opt = torch.optim.AdamW(param_groups(new_model, 0.0), lr=1e-2)
    new_sched = inverse_sqrt_schedule(new_opt, warmup_steps=2)
    new_opt.load_state_dict(state["optimizer"])
    new_sched.load_state_dict(state["scheduler"])
    assert [len(g["params"]) for g in new_opt.param_groups] == [2, 3]  # embedding and matrix; bias and norm
    for p_old, p_new in zip(old_model.parameters(), new_model.parameters()):  # moments moved with their params
        torch.testing.assert_close(new_opt.state[p_new]["exp_avg"], old_opt.state[p_old]["exp_avg"], atol=0, rtol=0)
    assert new_sched.get_last_lr() == old_sched.get_last_lr() * 2

    for model, opt, sched in ((old_model, old_opt, old_sched), (new_model, new_opt, new_sched)):
        generator = torch.Generator().manual_seed(1)
        for _ in range(3):
            model(torch.randint(0, 7, (4,), generator=generator)).square().sum().backward()
            opt.step()
            sched.step()
            opt.zero_grad()
    for p_old, p_new in zip(old_model.parameters(), new_model.parameters()):
        torch.testing.assert_close(p_new, p_old, atol=0, rtol=0)


def test_upgrade_refuses_a_model_that_does_not_match_and_a_newer_format(tmp_path):
    model = _tiny_model()
    old_opt, old_sched = _trained(model.parameters(), model)
    _write_old_format(tmp_path, old_opt, old_sched, torch.get_rng_state())
    with pytest.raises(ModelFolderError, match="5 parameters, the model has 2"):
        ckpt.upgrade_checkpoint(ckpt.load_training_state(tmp_path), torch.nn.Linear(3, 3))
    state = ckpt.load_training_state(tmp_path)
    state["format"] = ckpt.FORMAT + 1
    with pytest.raises(ModelFolderError, match="newer"):
        ckpt.upgrade_checkpoint(state, model)


def _downgrade(folder, model):
    """Rewrite a checkpoint's resume state in the old format (one group, parameters in model order)."""
    state = ckpt.load_training_state(folder)
    optimizer, scheduler = state["optimizer"], state["scheduler"]
    flags = [decays(p) for p in model.parameters()]
    position = [i for i, f in enumerate(flags) if f] + [i for i, f in enumerate(flags) if not f]  # new id -> old
    group = {**optimizer["param_groups"][0], "params": list(range(len(flags)))}
    old = {"state": {position[i]: entry for i, entry in optimizer["state"].items()}, "param_groups": [group]}
    scheduler = {k: v[:1] if isinstance(v, list) else v for k, v in scheduler.items()}
    rng = state["rng"]["torch_cpu_rank0"]
    tensors, meta = ckpt.optimizer_to_tensors(old)
    save_file(tensors, str(folder / ckpt.OPTIMIZER))
    save_file({"torch_cpu": rng}, str(folder / ckpt.RNG))
    (folder / ckpt.STATE).write_text(json.dumps({"trainer": state["trainer"], "optimizer": meta,
                                                 "scheduler": scheduler}))
    build = folder.with_name(".rewrite")
    shutil.copytree(folder, build)
    (build / ckpt.MANIFEST).unlink()
    ckpt.commit_folder(build, folder)


def test_trainer_resumes_an_old_format_checkpoint_like_a_current_one(tmp_path, small_data_root):
    from tformer.training.trainer import Trainer

    first = Trainer(tiny_recipe(small_data_root, max_steps=3), tmp_path / "new", progress=False)
    first.train()
    shutil.copytree(tmp_path / "new", tmp_path / "old")
    _downgrade(tmp_path / "old/checkpoints/step-00000003", first.model)
    for run in ("new", "old"):
        resumed = Trainer(tiny_recipe(small_data_root, max_steps=5), tmp_path / run, resume=True, progress=False)
        assert resumed.state.step == 3
        resumed.train()
    a = load_file(str(tmp_path / "new/checkpoints/step-00000005" / ckpt.WEIGHTS))
    b = load_file(str(tmp_path / "old/checkpoints/step-00000005" / ckpt.WEIGHTS))
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=0, rtol=0)
