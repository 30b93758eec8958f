"""DDP under torchrun on CPU (gloo): two ranks equal one process that accumulates their batches."""

import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from tformer.training.distributed import even_batches, shard

from tests.training.conftest import tiny_recipe


def test_shards_cover_every_batch_once_and_evenly():
    batches = [[i] * (i % 5 + 1) for i in range(11)]
    flat = sorted(x for b in batches for x in b)
    for world, accumulate in ((2, 1), (3, 2), (4, 1)):
        shards = [shard(batches, r, world, accumulate) for r in range(world)]
        assert len({len(s) for s in shards}) == 1  # same number of steps on every rank
        assert sorted(x for s in shards for b in s for x in b) == flat
    assert even_batches(batches, 1) == batches


def _train(tmp_path, name, root, nproc, accumulate):
    recipe = tiny_recipe(root, max_steps=3, accumulate=accumulate, threads=1)
    recipe.model["dropout"] = 0.0
    path = tmp_path / f"{name}.json"
    recipe.to_json(path)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m"]
    cmd = [*launcher, "tformer.cli.main", "train", "--config", str(path), "--out", str(tmp_path / name),
           "--no-progress"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=240)  # a hang fails, not blocks
    assert result.returncode == 0, result.stderr[-3000:]
    return load_file(str(tmp_path / name / "checkpoints" / "step-00000003" / "model.safetensors")), result.stderr


@pytest.mark.slow
def test_two_ranks_equal_one_process_with_twice_the_batch(tmp_path, small_data_root):
    ddp, log = _train(tmp_path, "ddp", small_data_root, nproc=2, accumulate=1)
    single, _ = _train(tmp_path, "single", small_data_root, nproc=1, accumulate=2)
    assert log.count("eval @ update 3") == 1  # only rank 0 logs
    for name in single:
        torch.testing.assert_close(ddp[name], single[name], atol=1e-5, rtol=0)


@pytest.mark.slow
def test_finetune_runs_under_torchrun_and_only_rank_0_writes(tmp_path):
    from tests.models.bert_helpers import save_tiny_encoder, write_toy_sentiment

    (tmp_path / "data").mkdir()
    write_toy_sentiment(tmp_path / "data")
    save_tiny_encoder(tmp_path / "encoder")
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m"]
    cmd = [*launcher, "tformer.cli.main", "finetune", "--model", str(tmp_path / "encoder"), "--data",
           str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--epochs", "2", "--batch-size", "8",
           "--threads", "1", "--no-progress"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=240)  # a hang fails, not blocks
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("epoch 2 step") == 1  # one log line per evaluation: rank 0 only
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 2  # written once, not once per rank
    assert (tmp_path / "run" / "best" / "model.safetensors").is_file()


@pytest.mark.slow
def test_resume_under_ddp_continues_exactly(tmp_path, small_data_root):
    def launch(name, max_steps, resume=False):
        recipe = tiny_recipe(small_data_root, max_steps=max_steps, threads=1)
        path = tmp_path / f"{name}-{max_steps}.json"
        recipe.to_json(path)
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m"]
        cmd = [*launcher, "tformer.cli.main", "train", "--config", str(path), "--out", str(tmp_path / name),
               "--no-progress"] + (["--resume"] if resume else [])
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=240)  # a hang fails, not blocks
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stderr

    launch("straight", 6)
    launch("stopped", 3)
    log = launch("stopped", 6, resume=True)
    assert log.count("resumed from step-00000003") == 1  # every rank resumed; rank 0 says so
    a = load_file(str(tmp_path / "straight" / "checkpoints" / "step-00000006" / "model.safetensors"))
    b = load_file(str(tmp_path / "stopped" / "checkpoints" / "step-00000006" / "model.safetensors"))
    for name in a:  # dropout 0.1 on both ranks: each rank's RNG state was restored too
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=0)


WORKER = """
import os, sys, time
from tformer.training import distributed
ctx = distributed.setup("cpu", timeout_s=20)
if ctx.rank == 1:
    sys.exit("rank 1: simulated failure")
ctx.barrier()  # rank 0 waits here for a rank that is gone
time.sleep(120)
"""


@pytest.mark.slow
def test_a_failing_rank_brings_the_run_down_instead_of_hanging(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert result.returncode != 0
    assert "simulated failure" in result.stderr
