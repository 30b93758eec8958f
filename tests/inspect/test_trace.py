import json
import math

import pytest
import torch

from tformer.decoding.beam import beam_search
from tformer.decoding.greedy import greedy_search
from tformer.inspect.trace import format_trace, teacher_force, trace_json, trace_translations

from tests.decoding.tiny import SENTENCES, tiny_translator


def source_tensor(translator, text):
    ids = translator.encode_sources([text])[0]
    return torch.tensor([ids + [translator.model.config.eos_id]])


@pytest.mark.parametrize("eos_bias", [0.0, 3.2])  # runs to the length limit / ends on its own
def test_greedy_trace_chooses_the_top_candidate_and_matches_decoding(eos_bias):
    translator = tiny_translator(eos_bias)
    traces = trace_translations(translator, SENTENCES, beam=1, top_k=4)
    assert [t.translation for t in traces] == translator.translate(SENTENCES, beam=1)
    eos = translator.model.config.eos_id
    for text, trace in zip(SENTENCES, traces):
        hyp = greedy_search(translator.model, source_tensor(translator, text))[0]
        assert [s.token_id for s in trace.steps] == hyp.tokens + [eos]
        assert trace.score == pytest.approx(hyp.score, abs=1e-6)
        assert sum(s.log_prob for s in trace.steps) == pytest.approx(trace.score, abs=1e-5)
        assert [s.t for s in trace.steps] == list(range(1, len(trace.steps) + 1))
        for step in trace.steps:
            assert len(step.candidates) == 4
            probs = [c.prob for c in step.candidates]
            assert probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
            if step.forced_end:  # only the last step, where the length limit allowed nothing but </s>
                assert step is trace.steps[-1] and step.token == "</s>"
                continue
            assert step.rank == 1 and step.candidates[0].token_id == step.token_id
            # teacher forcing reproduces the distribution decoding used
            assert step.candidates[0].prob == pytest.approx(step.prob, rel=1e-4)
        assert trace.steps[-1].token_id == eos


def test_a_greedy_trace_that_reaches_the_length_limit_marks_the_forced_end():
    translator = tiny_translator(eos_bias=0.0)
    trace = trace_translations(translator, SENTENCES[:1], beam=1, max_len_a=0.0, max_len_b=3)[0]
    assert len(trace.steps) == 4  # three tokens, then </s> forced
    assert [s.forced_end for s in trace.steps] == [False, False, False, True]
    assert trace.steps[-1].rank > 1  # the model wanted to go on
    assert "(end forced: length limit)" in format_trace(trace).splitlines()[-1]


def test_beam_trace_follows_the_returned_hypothesis_and_adds_up_to_its_score():
    translator = tiny_translator()
    traces = trace_translations(translator, SENTENCES, beam=3, top_k=3, length_penalty=1.0)
    assert [t.translation for t in traces] == translator.translate(SENTENCES, beam=3, length_penalty=1.0)
    eos = translator.model.config.eos_id
    ranks = []
    for text, trace in zip(SENTENCES, traces):
        src = source_tensor(translator, text)
        best = beam_search(translator.model, src, beam=3, length_penalty=1.0)[0][0]
        assert [s.token_id for s in trace.steps] == best.tokens + [eos]
        assert sum(s.log_prob for s in trace.steps) == pytest.approx(best.score, abs=1e-5)
        assert trace.score == pytest.approx(best.score, abs=1e-6)
        assert trace.normalized_score == pytest.approx(best.normalized_score, abs=1e-6)
        # the teacher-forced pass gives every chosen token the log-probability beam search scored it with
        forced = teacher_force(translator.model, src, best.tokens).log_probs
        for t, step in enumerate(trace.steps):
            if not step.forced_end:
                assert float(forced[t, step.token_id]) == pytest.approx(step.log_prob, abs=1e-4)
        ranks += [s.rank for s in trace.steps if not s.forced_end]
    assert max(ranks) > 1  # beam search does take tokens that were not locally the best, and the trace shows it


def test_trace_text_and_json():
    translator = tiny_translator()
    trace = trace_translations(translator, SENTENCES[2:], beam=3, top_k=2)[0]
    lines = format_trace(trace).splitlines()
    assert lines[0] == SENTENCES[2] and lines[1].startswith(f"-> {trace.translation}")
    assert len(lines) == 2 + len(trace.steps)
    for line, step in zip(lines[2:], trace.steps):
        assert line.startswith(f"t={step.t}  {step.token} ")
        assert (f"(rank {step.rank})" in line) == (step.rank > 1 and not step.forced_end)
        assert ("(end forced: length limit)" in line) == step.forced_end
        assert line.count(" | ") == 1  # the chosen token and one other candidate
    assert lines[-1].startswith(f"t={len(trace.steps)}  </s> ")
    data = json.loads(json.dumps(trace.to_dict()))
    assert data["translation"] == trace.translation and "forward" not in data
    assert [s["token"] for s in data["steps"]] == trace.target_tokens
    assert math.fsum(s["log_prob"] for s in data["steps"]) == pytest.approx(data["score"], abs=1e-5)
    assert data["steps"][0]["prob"] == pytest.approx(math.exp(data["steps"][0]["log_prob"]))


def test_empty_input_gives_an_empty_trace_and_bad_top_k_is_refused():
    translator = tiny_translator()
    trace = trace_translations(translator, ["  "], beam=1)[0]
    assert trace.steps == [] and trace.translation == ""
    assert "empty input" in format_trace(trace)
    with pytest.raises(ValueError, match="top_k must be at least 1, got 0"):
        trace_translations(translator, SENTENCES, top_k=0)


def test_the_api_form_of_a_trace_keeps_the_steps_and_their_sum():
    translator = tiny_translator(eos_bias=0.0)
    trace = trace_translations(translator, SENTENCES[:1], beam=2, top_k=3)[0]
    data = json.loads(json.dumps(trace_json(trace)))
    assert data["target_tokens"] == trace.target_tokens and data["source_tokens"] == trace.source_tokens
    assert [s["token"] for s in data["steps"]] == trace.target_tokens
    assert math.fsum(s["log_prob"] for s in data["steps"]) == pytest.approx(data["score"], abs=1e-5)
    assert data["normalized_score"] == trace.normalized_score and data["beam"] == 2
    assert all(len(s["candidates"]) == 3 and "token_id" not in s["candidates"][0] for s in data["steps"])
    assert any(s["forced_end"] for s in data["steps"]) == any(s.forced_end for s in trace.steps)
