"""SQuAD reading and windowing: windows cover the context with overlap, every token has one home window,
offsets give back the exact characters, and answer labels point at the answer."""

import gzip
import json

import pytest

from tformer.data.squad import make_windows, read_paragraphs, read_squad
from tformer.errors import DataError
from tformer.text.pretrained import Tokenizer

from tests.models.bert_helpers import write_vocab_folder

CONTEXT = ("the movie was good but the plot was dull . i love the story , it is fun and lovely but the film is "
           "very boring and this plot is terrible . the story was great !")


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return Tokenizer.from_pretrained(write_vocab_folder(tmp_path_factory.mktemp("vocab")))


@pytest.mark.parametrize("max_length, stride", [(16, 3), (20, 5), (13, 7), (64, 10)])
def test_windows_cover_the_context_and_each_token_has_one_home(tokenizer, max_length, stride):
    windows = make_windows(tokenizer, "is the plot dull", CONTEXT, max_length, stride)
    ids, offsets = tokenizer.encode_with_offsets(CONTEXT)
    seen, homes = set(), {}
    for w in windows:
        assert len(w.input_ids) <= max_length
        assert len(w.input_ids) == len(w.token_type_ids) == len(w.offsets) == len(w.max_context)
        for tok, off, home in zip(w.input_ids, w.offsets, w.max_context):
            if off is None:
                assert not home
                continue
            k = offsets.index(off)
            assert ids[k] == tok and CONTEXT[off[0]:off[1]] == CONTEXT[offsets[k][0]:offsets[k][1]]
            seen.add(k)
            homes[k] = homes.get(k, 0) + home
    assert seen == set(range(len(ids)))
    assert all(count == 1 for count in homes.values()) and len(homes) == len(ids)
    room = max_length - len(tokenizer.encode_with_offsets("is the plot dull")[0]) - 3
    if len(windows) > 1 and stride < room:  # consecutive windows overlap when the stride is shorter
        first = {o for o in windows[0].offsets if o}
        assert first & {o for o in windows[1].offsets if o}


def test_answer_labels_point_at_the_answer_or_at_cls(tokenizer):
    answer = "very boring"
    start = CONTEXT.index(answer)
    windows = make_windows(tokenizer, "is the film good", CONTEXT, 16, 4, answer=(start, answer))
    labelled = [w for w in windows if w.start_position]
    assert labelled and len(labelled) < len(windows)
    for w in labelled:
        s, e = w.offsets[w.start_position], w.offsets[w.end_position]
        assert CONTEXT[s[0]:e[1]] == answer
    assert all(w.end_position == 0 for w in windows if w.start_position == 0)


def test_question_longer_than_allowed_is_cut_or_refused(tokenizer):
    q = " ".join(["good"] * 10)
    w = make_windows(tokenizer, q, CONTEXT, 30, 8, max_question_length=4)[0]
    assert w.token_type_ids.count(0) == 4 + 2
    with pytest.raises(ValueError, match="10 tokens long"):
        make_windows(tokenizer, q, CONTEXT, 30, 8, max_question_length=4, truncate_question=False)


def _squad(tmp_path, answer_start):
    doc = {"version": "1.1", "data": [{"title": "T", "paragraphs": [
        {"context": "Paris is in France.", "qas": [
            {"id": "a", "question": "Where is Paris?", "answers": [{"text": "France", "answer_start": answer_start}]},
            {"id": "b", "question": "What is in France?", "answers": [{"text": "Paris", "answer_start": 0}]}]},
        {"context": "Rome is old.", "qas": [{"id": "c", "question": "What is old?",
                                             "answers": [{"text": "Rome", "answer_start": 0}]}]}]}]}
    path = tmp_path / "s.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump(doc, f)
    return path


def test_read_squad_and_paragraphs(tmp_path):
    path = _squad(tmp_path, 12)
    examples = read_squad(path)
    assert [e.id for e in examples] == ["a", "b", "c"]
    assert [e.paragraph for e in examples] == [0, 0, 1]
    paragraphs = read_paragraphs(path)
    assert [paragraphs[e.paragraph][1] for e in examples] == [e.context for e in examples]


def test_answer_not_at_its_offset_is_an_error(tmp_path):
    with pytest.raises(DataError, match="question a"):
        read_squad(_squad(tmp_path, 3))
