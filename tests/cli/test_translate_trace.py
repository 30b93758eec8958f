import json

import pytest

from tformer.cli.main import main

from tests.decoding.tiny import SENTENCES, tiny_translator


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    tiny_translator(eos_bias=0.0).save_pretrained(folder)
    return str(folder)


def test_trace_prints_every_step_with_top_candidates_ending_with_eos(model_dir, capsys):
    assert main(["translate", "--model", model_dir, "--beam", "1", "--trace", "--top-k", "2", SENTENCES[0]]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == SENTENCES[0] and lines[1].startswith("-> ") and "[greedy; score " in lines[1]
    steps = lines[2:]
    assert steps and all(line.startswith(f"t={i}  ") for i, line in enumerate(steps, start=1))
    assert all(line.count(" | ") == 1 for line in steps)
    assert steps[-1].startswith(f"t={len(steps)}  </s> ")


def test_json_trace_is_data_whose_steps_add_up_to_the_score(model_dir, capsys):
    assert main(["translate", "--model", model_dir, "--beam", "2", "--json", SENTENCES[2], ""]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["source"] for r in rows] == [SENTENCES[2], ""]
    assert rows[1]["steps"] == [] and rows[1]["translation"] == ""
    for row in rows[:1]:
        assert row["beam"] == 2 and row["steps"][-1]["token"] == "</s>"
        assert sum(s["log_prob"] for s in row["steps"]) == pytest.approx(row["score"], abs=1e-5)
        assert all(len(s["candidates"]) == 3 for s in row["steps"])
    assert main(["translate", "--model", model_dir, "--beam", "2", SENTENCES[2], ""]) == 0
    assert capsys.readouterr().out.splitlines() == [r["translation"] for r in rows]


def test_trace_with_nbest_is_refused(model_dir, capsys):
    assert main(["translate", "--model", model_dir, "--trace", "--nbest", "2", SENTENCES[0]]) == 1
    assert "--trace follows one translation per sentence" in capsys.readouterr().err
