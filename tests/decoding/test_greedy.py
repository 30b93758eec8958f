"""Greedy search on its own: hand-written probabilities, batch and padding invariance, length limits."""

import math

import pytest
import torch

from tformer.decoding.greedy import greedy_search
from tformer.decoding.search import max_output_length

from tests.conftest import tiny_config
from tests.decoding.scripted import EOS, PAD, A, B, ScriptedModel

# Greedy takes A (0.5), then B (0.45), then EOS (0.7): 0.5 * 0.45 * 0.7. The table's best sequence (B EOS, 0.48)
# starts with the locally worse token, so greedy must not find it.
TABLE = {
    (): {A: 0.5, B: 0.48, EOS: 0.02},
    (A,): {B: 0.45, A: 0.3, EOS: 0.25},
    (B,): {EOS: 1.0},
    (A, B): {EOS: 0.7, A: 0.2, B: 0.1},
}


class NeverEnds(dict):
    """Every prefix continues with A (0.7), B (0.2) or EOS (0.1): only the length limit ends a row."""

    def get(self, prefix, default=None):
        return {A: 0.7, B: 0.2, EOS: 0.1}


def src_of(lengths: list[int], extra_padding: int = 0) -> torch.Tensor:
    """(batch, max_len + extra) rows of A ... EOS with the given token counts (EOS included), padded with PAD."""
    src = torch.full((len(lengths), max(lengths) + extra_padding), PAD)
    for row, n in enumerate(lengths):
        src[row, : n - 1], src[row, n - 1] = A, EOS
    return src


def test_greedy_takes_the_locally_best_token_at_every_step():
    hyp = greedy_search(ScriptedModel(TABLE), src_of([3]))[0]
    assert hyp.tokens == [A, B]
    assert hyp.step_log_probs == pytest.approx([math.log(0.5), math.log(0.45), math.log(0.7)], abs=1e-6)
    assert hyp.score == pytest.approx(math.log(0.5 * 0.45 * 0.7), abs=1e-5)
    assert hyp.normalized_score is None


def test_the_length_limit_forces_the_end_with_its_own_probability():
    lengths = [1, 4, 7]  # source tokens, EOS included: limits 1.5 n + 10 -> 11, 16, 20; rows end at different steps
    model = ScriptedModel(NeverEnds())
    for hyp, n in zip(greedy_search(model, src_of(lengths)), lengths):
        limit = max_output_length(n, model.config.max_len)
        assert hyp.tokens == [A] * limit
        assert hyp.step_log_probs[-1] == pytest.approx(math.log(0.1), abs=1e-6)  # EOS scored, not at 0
        assert hyp.score == pytest.approx(limit * math.log(0.7) + math.log(0.1), abs=1e-4)


@pytest.mark.parametrize(("a", "b", "max_len"), [(1.0, 0, 64), (0.5, 3, 64), (2.0, 10, 9)])
def test_the_length_limit_follows_a_b_and_the_model_maximum(a, b, max_len):
    model = ScriptedModel(NeverEnds(), max_len=max_len)
    for hyp, n in zip(greedy_search(model, src_of([2, 5]), max_len_a=a, max_len_b=b), [2, 5]):
        assert len(hyp.tokens) == min(int(a * n + b), max_len - 1)


def test_decoding_steps_stop_when_every_row_has_ended():
    model = ScriptedModel(TABLE)
    greedy_search(model, src_of([3, 5, 2]))
    assert len(model.calls) == 3  # A, B, EOS: no step after the last row ends, although the limits are longer


def test_greedy_picks_the_argmax_of_the_model_given_its_own_prefix(tiny_model):
    src = torch.tensor([[5, 6, 7, 8, 2], [9, 10, 2, 0, 0]])
    for row, hyp in enumerate(greedy_search(tiny_model, src)):
        tgt = torch.tensor([[tiny_model.config.bos_id, *hyp.tokens]])
        full = tiny_model.output.log_probs(tiny_model.decode(tgt, tiny_model.encode(src[row : row + 1])).hidden)[0]
        chosen = [*hyp.tokens, tiny_model.config.eos_id]
        limit = max_output_length(int(src[row].ne(0).sum()), tiny_model.config.max_len)
        for t, token in enumerate(chosen):
            if t < limit:
                assert int(full[t].argmax()) == token
        torch.testing.assert_close(torch.tensor(hyp.step_log_probs), full[torch.arange(len(chosen)), chosen],
                                   atol=1e-4, rtol=0)


def test_greedy_is_batch_and_padding_invariant():
    torch.manual_seed(3)
    model = __import__("tformer").Seq2SeqTransformer(tiny_config()).eval()
    with torch.no_grad():
        model.output.bias[2] = 0.7  # EOS likely enough that some rows end before their limits, at different steps
    sentences = [torch.randint(4, 37, (int(n),)).tolist() for n in torch.randint(1, 12, (9,))]

    def pad(rows, extra=0):
        src = torch.zeros(len(rows), max(map(len, rows)) + 1 + extra, dtype=torch.long)
        for i, r in enumerate(rows):
            src[i, : len(r) + 1] = torch.tensor(r + [2])
        return src

    alone = [greedy_search(model, pad([s]))[0] for s in sentences]
    order = torch.randperm(len(sentences)).tolist()
    together = greedy_search(model, pad([sentences[i] for i in order], extra=3))
    assert len({len(h.tokens) for h in alone}) >= 3  # rows of different lengths
    for pos, i in enumerate(order):
        assert together[pos].tokens == alone[i].tokens
        assert together[pos].score == pytest.approx(alone[i].score, abs=1e-4)


def test_a_model_without_room_for_output_ends_at_once():
    model = ScriptedModel(NeverEnds(), max_len=1)  # max_len 1: room for BOS only, so EOS comes at once
    hyp = greedy_search(model, src_of([3]))[0]
    assert hyp.tokens == [] and hyp.score == pytest.approx(math.log(0.1), abs=1e-6)
