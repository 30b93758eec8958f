import math

import pytest
import torch

from tformer.decoding.beam import beam_search
from tformer.decoding.greedy import greedy_search
from tformer.decoding.search import freeze_finished, restrict_to_eos

from tests.conftest import tiny_config
from tests.decoding.scripted import EOS, A, B, ScriptedModel

# Greedy takes A (0.6) and ends with A A EOS: 0.6 * 0.35 * 0.98 = 0.206.  The best sequence is B EOS: 0.4 * 0.9 = 0.36.
TABLE = {
    (): {A: 0.6, B: 0.4},
    (A,): {A: 0.35, B: 0.34, EOS: 0.31},
    (B,): {EOS: 0.9, A: 0.05, B: 0.05},
    (A, A): {EOS: 0.98, A: 0.01, B: 0.01},
    (A, B): {EOS: 0.98, A: 0.01, B: 0.01},
}
SRC = torch.tensor([[A, EOS]])


def test_greedy_follows_the_locally_best_token():
    hyp = greedy_search(ScriptedModel(TABLE), SRC)[0]
    assert hyp.tokens == [A, A]
    assert hyp.score == pytest.approx(math.log(0.6 * 0.35 * 0.98), abs=1e-5)


def test_beam_search_finds_the_globally_better_sequence():
    hyps = beam_search(ScriptedModel(TABLE), SRC, beam=2, length_penalty=0.0, nbest=2)[0]
    assert hyps[0].tokens == [B]
    assert hyps[0].score == pytest.approx(math.log(0.36), abs=1e-5)
    assert sum(hyps[0].step_log_probs) == pytest.approx(hyps[0].score, abs=1e-5)
    assert hyps[1].tokens == [A, A]
    assert hyps[1].score == pytest.approx(math.log(0.6 * 0.35 * 0.98), abs=1e-5)


def test_beam_keeps_the_top_k_by_score_and_length_penalty_reranks():
    # step 2 candidates: B EOS 0.36, A A 0.21, A B 0.204, A EOS 0.186 -> beam 3 keeps the first three
    hyps = beam_search(ScriptedModel(TABLE), SRC, beam=3, length_penalty=0.0, nbest=3)[0]
    raw = {tuple(h.tokens): h.score for h in hyps}
    expected = {(B,): 0.36, (A, A): 0.6 * 0.35 * 0.98, (A, B): 0.6 * 0.34 * 0.98}
    assert raw.keys() == expected.keys()
    for key, p in expected.items():
        assert raw[key] == pytest.approx(math.log(p), abs=1e-5)
    # score / length**3 (length counts EOS): B EOS -> -1.02/8 = -0.128, A A EOS -> -1.58/27 = -0.059
    reranked = beam_search(ScriptedModel(TABLE), SRC, beam=3, length_penalty=3.0, nbest=3)[0]
    assert reranked[0].tokens == [A, A]
    for h in reranked:
        assert h.normalized_score == pytest.approx(h.score / (len(h.tokens) + 1) ** 3.0, abs=1e-5)


def test_beam_of_one_equals_greedy_on_a_real_model():
    model = __import__("tformer").Seq2SeqTransformer(tiny_config()).eval()
    src = torch.randint(4, 37, (4, 6))
    src[2, 3:] = 0
    greedy = greedy_search(model, src)
    beam1 = beam_search(model, src, beam=1)
    assert [h.tokens for h in greedy] == [h[0].tokens for h in beam1]
    for g, b in zip(greedy, beam1):
        assert g.score == pytest.approx(b[0].score, abs=1e-4)


@pytest.mark.parametrize("beam", [1, 3])
def test_decoding_is_batch_invariant(beam):
    model = __import__("tformer").Seq2SeqTransformer(tiny_config()).eval()
    torch.manual_seed(1)
    sentences = [torch.randint(4, 37, (int(n),)).tolist() for n in torch.randint(2, 12, (8,))]

    def pad(rows):
        src = torch.zeros(len(rows), max(map(len, rows)) + 1 + 3, dtype=torch.long)  # extra padding on purpose
        for i, r in enumerate(rows):
            src[i, : len(r) + 1] = torch.tensor(r + [2])
        return src

    alone = [beam_search(model, pad([s]), beam=beam)[0][0].tokens for s in sentences]
    order = torch.randperm(len(sentences)).tolist()
    together = beam_search(model, pad([sentences[i] for i in order]), beam=beam)
    for pos, i in enumerate(order):
        assert together[pos][0].tokens == alone[i]


def test_every_hypothesis_respects_the_length_limit():
    model = __import__("tformer").Seq2SeqTransformer(tiny_config()).eval()  # untrained: rarely emits EOS
    src = torch.randint(4, 37, (2, 4))
    for hyps in beam_search(model, src, beam=3, nbest=3, max_len_a=1.0, max_len_b=2):
        for h in hyps:
            assert len(h.tokens) <= 1.0 * 5 + 2


def test_freezing_finished_rows_equals_restricting_them_to_eos():
    log_probs = torch.randn(5, 7).log_softmax(-1)  # (rows, vocab)
    finished = torch.tensor([True, False, True, False, False])
    expected = log_probs.clone()
    restrict_to_eos(expected, finished, torch.zeros(5, dtype=torch.bool), eos_id=2)
    assert torch.equal(freeze_finished(log_probs, finished, eos_id=2), expected)


@pytest.mark.parametrize("beam", [1, 3])
def test_dropping_finished_sentences_from_the_batch_changes_no_result(beam, monkeypatch):
    import tformer.decoding.beam as beam_module
    import tformer.decoding.greedy as greedy_module

    torch.manual_seed(3)
    model = __import__("tformer").Seq2SeqTransformer(tiny_config()).eval()
    with torch.no_grad():
        model.output.bias[2] = 1.5  # EOS (id 2) likely enough that sentences end at many different steps
    src = torch.randint(4, 37, (24, 9))

    def run():
        if beam == 1:
            return [[h] for h in greedy_search(model, src)]
        return beam_search(model, src, beam=beam, nbest=beam)

    pruned_at = []
    real_should_prune = greedy_module.should_prune

    def counting(finished, rows):
        pruned_at.append(real_should_prune(finished, rows))
        return pruned_at[-1]

    monkeypatch.setattr(greedy_module, "should_prune", counting)
    monkeypatch.setattr(beam_module, "should_prune", counting)
    pruned = run()
    assert sum(pruned_at) >= 2  # the batch did shrink, more than once
    monkeypatch.setattr(greedy_module, "should_prune", lambda finished, rows: False)
    monkeypatch.setattr(beam_module, "should_prune", lambda finished, rows: False)
    full = run()
    assert len({len(h[0].tokens) for h in full}) >= 3  # sentences of different lengths
    for p_hyps, f_hyps in zip(pruned, full):
        assert [h.tokens for h in p_hyps] == [h.tokens for h in f_hyps]
        assert [h.score for h in p_hyps] == pytest.approx([h.score for h in f_hyps], abs=1e-5)
