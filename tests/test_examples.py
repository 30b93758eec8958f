"""The examples/ scripts run offline and the Hugging Face and tformer versions print the same shape."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_automodel_snippet_prints_the_same_shape_in_both_versions():
    pytest.importorskip("transformers")
    tformer_shape = run_example("tformer_automodel.py")
    assert tformer_shape == "torch.Size([1, 9, 384])"
    assert run_example("hf_automodel.py") == tformer_shape


def test_the_fine_tuning_snippet_runs_with_tformer_imports():
    assert run_example("tformer_finetune_step.py").startswith("Fine-Tuned Model Accuracy: ")


def test_the_seed_text_code_runs_with_tformer_imports():
    source = (EXAMPLES / "tformer_automodel.py").read_text()
    assert "tokenizer(sentence, return_tensors='pt')" in source and "model(**inputs)" in source
    assert "transformers" not in source.split('"""')[-1]
