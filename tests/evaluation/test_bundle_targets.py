"""scripts/bundle_model.py sets each of the issue's figures beside its target and writes the table into the card."""

import importlib.util
import json
from pathlib import Path

SPEC = importlib.util.spec_from_file_location("bundle_model", Path("scripts/bundle_model.py"))
bundle_model = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bundle_model)


def results(tatoeba_bleu, names_rate, megabytes=30.0):
    return {"tatoeba_test_beam4": {"bleu": tatoeba_bleu, "chrf": 60.0},
            "unseen_names_and_places_beam4": {"names": {"rate": names_rate}},
            "seed_example": {"right": True}, "float16_megabytes": megabytes}


def test_targets_are_met_only_when_the_figure_reaches_them():
    rows = {r["what"]: r for r in bundle_model.targets(results(42.0, 0.89, 41.0))}
    assert rows["Tatoeba test BLEU, beam 4"]["met"] is True
    assert rows["unseen names copied (share of sentences)"]["met"] is False
    assert rows["Tatoeba test chrF, beam 4"]["met"] is None  # reported, no target
    assert rows["bundle size in MB (float16), at most"]["met"] is False  # an upper limit
    assert len(rows) == 5  # figures missing from the results are left out, not invented


def test_the_card_table_is_replaced_between_the_markers_only(tmp_path):
    card = tmp_path / "README.md"
    card.write_text("# Card\n\n<!-- targets:start -->\nold table\n<!-- targets:end -->\n\nMore text.\n")
    bundle_model.write_card_targets(card, bundle_model.targets(results(43.5, 0.95)))
    text = card.read_text()
    assert "old table" not in text and "| Tatoeba test BLEU, beam 4 | 43.5 | 42.0 | yes |" in text
    assert text.startswith("# Card\n") and text.endswith("<!-- targets:end -->\n\nMore text.\n")
    bundle_model.write_card_targets(card, bundle_model.targets(results(40.0, 0.95)))
    assert "| Tatoeba test BLEU, beam 4 | 40.0 | 42.0 | **no** |" in card.read_text()
    assert card.read_text().count("targets:start") == 1


def test_a_stage_records_its_updates_and_minutes_from_the_last_timed_line(tmp_path):
    rows = [{"kind": "train", "step": 6600, "seconds": 7461.4}, {"kind": "eval", "step": 6639, "seconds": 7500.6},
            {"kind": "average", "checkpoints": ["a", "b"], "val_bleu": 40.7}]  # the trainer's last line has neither
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert bundle_model.training_time(tmp_path) == {"updates": 6639, "training_minutes": 125.0}
    assert bundle_model.training_time(tmp_path / "missing") == {"updates": None, "training_minutes": 0.0}
