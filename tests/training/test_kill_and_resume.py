"""A training process killed with SIGKILL at an arbitrary moment resumes and ends exactly where an
uninterrupted run ends."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from tests.training.conftest import tiny_recipe


def _cmd(config, out, resume=False):
    cmd = [sys.executable, "-m", "tformer.cli.main", "train", "--config", str(config), "--out", str(out),
           "--no-progress"]
    return cmd + ["--resume"] if resume else cmd


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_equals_uninterrupted(tmp_path, small_data_root):
    recipe = tiny_recipe(small_data_root, max_steps=12, eval_every=2, keep_last=2, average_last=0)
    config = tmp_path / "recipe.json"
    recipe.to_json(config)
    straight = subprocess.run(_cmd(config, tmp_path / "straight"), capture_output=True, text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr[-2000:]

    run = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(config, run), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and not (run / "checkpoints" / "step-00000004").exists():
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere after the second checkpoint: mid-update or mid-write
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    leftovers = [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
    resumed = subprocess.run(_cmd(config, run, resume=True), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from step-" in resumed.stderr

    a = load_file(str(tmp_path / "straight" / "checkpoints" / "step-00000012" / "model.safetensors"))
    b = load_file(str(run / "checkpoints" / "step-00000012" / "model.safetensors"))
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=0)
    del leftovers  # a half-written staging folder may remain; it is never mistaken for a checkpoint
    assert all(p.name.startswith(("step-", ".")) for p in (run / "checkpoints").iterdir())
    assert os.path.isdir(run / "final")
