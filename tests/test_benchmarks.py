"""The benchmark suite's own machinery (the suite itself runs with `make bench`, not in the tests)."""

import pytest

from benchmarks import harness, report


def test_sides_are_interleaved_after_warmup():
    calls = []
    sides = {name: (lambda name=name: calls.append(name)) for name in ("a", "b", "c")}
    seconds = harness.interleaved(sides, repeats=3, warmup=1)
    assert calls == ["a", "b", "c"] * 4
    assert all(len(s) == 3 and min(s) >= 0 for s in seconds.values())


def test_measure_reports_medians_throughput_and_memory():
    results = harness.measure({"x": lambda: bytearray(8 << 20)}, work=10, unit="items", repeats=5, warmup=1)
    x = results["x"]
    assert len(x.seconds) == 5 and x.throughput == 10 / x.median_seconds
    assert x.peak_rss_mb > 0 and x.rss_growth_mb >= 0


def test_ratios_and_targets():
    fast = harness.SideResult("tformer", [1.0, 1.0, 1.0], 1, "s")
    slow = harness.SideResult("hf", [2.0, 2.5, 3.0], 1, "s")
    ratio = report.Ratio("case", "tformer", "hf", report.speedup({"tformer": fast, "hf": slow}, "tformer", "hf"), 2.0)
    assert ratio.value == 2.5 and ratio.met
    assert report.Ratio("case", "a", "b", 0.6, 1 / 1.5).met is False
    assert report.Ratio("case", "a", "b", 0.6).met is None


def test_docs_block_is_replaced_and_the_rest_kept(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Title\n\nprose\n\n{report.DOC_START}\nold\n{report.DOC_END}\n\nafter\n")
    side = harness.SideResult("tformer", [1.0] * 5, 4, "sentences", extra={"ms_per_token": 2.0}, peak_rss_mb=100,
                              rss_growth_mb=5)
    record = dict(
        started="2026-01-01T00:00:00Z", command="python -m benchmarks.run", settings={"threads": 2},
        machine=dict(cpu="cpu", logical_cpus=2, python="3.11", torch="2", transformers="5", ctranslate2="4",
                     load_average_at_start=[0.5, 0.5, 0.5]),
        cases=[dict(name="translate greedy, batch 1", setting={}, sides={"tformer": side.to_dict()})],
        ratios=[report.Ratio("translate greedy, batch 1", "tformer", "hf", 2.5, 2.0).to_dict()],
    )
    for _ in range(2):  # idempotent
        report.update_docs(record, doc, tmp_path / "results" / "run.json", tmp_path / "benchmarks.png")
    text = doc.read_text()
    assert text.startswith("# Title\n\nprose\n\n") and text.endswith("\n\nafter\n") and "old" not in text
    assert text.count(report.DOC_START) == 1 and "| translate greedy, batch 1 | tformer vs hf | 2.50x |" in text
    assert "2.00 ms/token" in text and "results/run.json" in text


def test_training_step_case_runs_and_both_sides_start_from_the_same_function():
    """Case 1 on two tiny real batches: it must run (it broke once unnoticed) and compare equal models."""
    import pytest

    pytest.importorskip("transformers")
    from tformer import Translator

    from benchmarks import training_step

    translator = Translator.from_pretrained()
    batches = training_step.real_batches(translator, count=2, max_tokens=150, pairs=200)
    results = training_step.run_case(translator, batches, repeats=1, warmup=0)
    assert set(results) == {"tformer", "hf"}
    tokens = sum(b.num_target_tokens(translator.model.config.pad_id) for b in batches)
    for result in results.values():
        assert result.extra["max_abs_logit_difference"] < 1e-3  # same weights, same function
        assert result.throughput > 0 and result.to_dict()["work"] == tokens


def test_child_side_runs_in_its_own_process_and_reports_errors_and_memory():
    import functools
    import os

    from benchmarks.isolated import ChildSide

    side = ChildSide(functools.partial, os.getpid)  # the child builds partial(os.getpid); calls run it there
    try:
        child_pid = side()
        assert isinstance(child_pid, int) and child_pid != os.getpid()
        peak, growth = side.peak_memory()
        assert peak > 0 and growth >= 0
    finally:
        side.close()
    failing = ChildSide(functools.partial, int)
    try:
        assert failing("12") == 12
        with pytest.raises(RuntimeError, match="ValueError"):
            failing("not a number")
        assert failing("7") == 7  # the child survives a failed call
    finally:
        failing.close()
    with pytest.raises(RuntimeError, match="ValueError"):
        ChildSide(int, "no engine")  # the factory itself fails


def test_docs_change_only_with_update_docs_and_quick_is_small():
    from benchmarks.run import parse_args

    assert parse_args([]).update_docs is False
    assert parse_args(["--update-docs"]).update_docs is True
    assert parse_args(["--update-docs", "--no-docs"]).update_docs is False
    quick = parse_args(["--quick", "--update-docs"])
    assert quick.update_docs is False and quick.repeats == 1 and quick.warmup == 0 and quick.sentences <= 8


def test_quick_says_how_long_the_last_full_run_took(tmp_path):
    import json

    from benchmarks.run import full_run_note

    assert "No full run is recorded yet" in full_run_note(tmp_path)
    cases = [{"name": n} for n in ("training step", "translate greedy, batch 32", "bert forward 1x16")]
    full = {"settings": {"quick": False, "threads": 2}, "cases": cases, "seconds": 390.0, "started": "2026-01-01"}
    (tmp_path / "bench-20260101T000000.json").write_text(json.dumps(full))
    quick = {**full, "settings": {"quick": True}, "seconds": 50.0}
    (tmp_path / "bench-20260102T000000.json").write_text(json.dumps(quick))  # newer, but quick: not the full run
    assert "The full run took 6.5 minutes last time (2 threads, 2026-01-01" in full_run_note(tmp_path)
