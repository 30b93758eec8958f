"""Scoring a text with a causal language model (evaluation/language_model.py): the windowed loss is the mean over
windows scored one by one, for any window length up to the model's context; batching does not change it; the
per-character figure accounts for multi-character tokens; the position spans are means of their positions. Strided
(overlapping) windows score each token once, from the window a direct computation gives it."""

import math

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from tformer.errors import ConfigError, DataError
from tformer.evaluation import language_model as lm
from tformer.models.causal_lm import CausalLM, CausalLMConfig
from tformer.text.chars import CharTokenizer
from tformer.text.chat_tokenizer import ChatTokenizer

TEXT = "".join(f"{who} sees the {what}. " for who in ("Anna", "Ben", "Cleo", "Dov") for what in ("sun", "sea")) * 6


def tiny_model(vocab: int, max_len: int = 16) -> CausalLM:
    torch.manual_seed(0)
    config = CausalLMConfig(vocab_size=vocab, d_model=24, num_layers=2, num_heads=3, d_ff=40, max_len=max_len,
                            dropout=0.0, positions="rotary", norm="rmsnorm", activation="swiglu", bias=False,
                            pad_id=0, bos_id=0, eos_id=0)
    return CausalLM(config).eval()


@pytest.fixture(scope="module")
def chars():
    tokenizer = CharTokenizer.from_text(TEXT)
    return tiny_model(tokenizer.vocab_size), tokenizer, torch.tensor(tokenizer.encode(TEXT))


def one_by_one(model: CausalLM, ids: torch.Tensor, context: int) -> torch.Tensor:
    """(windows, context): each consecutive window scored in its own forward pass."""
    with torch.no_grad():
        return torch.stack([torch.nn.functional.cross_entropy(model(ids[i * context : (i + 1) * context][None])[0],
                                                              ids[i * context + 1 : (i + 1) * context + 1],
                                                              reduction="none")
                            for i in range((len(ids) - 1) // context)])


@pytest.mark.parametrize("context", [16, 7, 1])
def test_shorter_windows_are_scored_like_windows_on_their_own(chars, context):
    model, _, ids = chars
    each = one_by_one(model, ids, context)
    by_position = lm.loss_by_position(model, ids, context=context, batch_size=5)
    assert by_position.shape == (context,)
    assert torch.allclose(by_position.float(), each.mean(0), rtol=1e-5, atol=1e-6)
    assert lm.windowed_loss(model, ids, context=context, windows=3) == pytest.approx(float(each[:3].mean()),
                                                                                    rel=1e-5)


def test_context_must_fit_the_model(chars):
    model, _, ids = chars
    for bad in (0, 17):
        with pytest.raises(ConfigError, match=f"context must be in \\[1, 16\\].*{bad}"):
            lm.windowed_loss(model, ids, context=bad)
    with pytest.raises(DataError, match="cannot fill one window of 16"):
        lm.windowed_loss(model, ids[:16])


def test_the_logit_budget_changes_the_batches_not_the_loss(chars, monkeypatch):
    model, _, ids = chars
    whole = lm.loss_by_position(model, ids)
    assert lm.window_rows(16, model.config.vocab_size, 64) == 64
    monkeypatch.setattr(lm, "LOGIT_BUDGET", 2 * 16 * model.config.vocab_size)  # two windows per pass
    assert lm.window_rows(16, model.config.vocab_size, 64) == 2
    assert torch.allclose(lm.loss_by_position(model, ids), whole, rtol=1e-6, atol=1e-7)
    assert lm.window_rows(8192, 49152, 64) == 1  # a long context and a large vocabulary: one window at a time


def test_position_buckets_are_the_means_of_their_spans():
    by_position = torch.arange(21, dtype=torch.float64)
    spans = lm.position_buckets(by_position)
    assert list(spans) == ["0", "1-3", "4-15", "16-20"]
    assert spans == {"0": 0.0, "1-3": 2.0, "4-15": 9.5, "16-20": 18.0}


def test_a_character_model_scores_each_character_once(chars):
    model, tokenizer, ids = chars
    score = lm.score_text(model, tokenizer, TEXT)
    windows = (len(TEXT) - 1) // 16
    assert (score.windows, score.tokens, score.characters) == (windows, windows * 16, windows * 16)
    assert score.nats_per_token == pytest.approx(lm.windowed_loss(model, ids), rel=1e-12)
    assert score.nats_per_character == pytest.approx(score.nats_per_token, rel=1e-12)
    assert score.perplexity == pytest.approx(math.exp(score.nats_per_token))
    assert score.bits_per_token == pytest.approx(score.nats_per_token / math.log(2))
    assert score.to_dict()["by_position"] == score.by_position and set(score.by_position) == {"0", "1-3", "4-15"}


def test_per_character_loss_spreads_a_tokens_loss_over_its_characters():
    hf = Tokenizer(models.BPE(unk_token="[UNK]"))
    hf.pre_tokenizer = pre_tokenizers.Whitespace()
    hf.train_from_iterator([TEXT], trainers.BpeTrainer(vocab_size=60, special_tokens=["[UNK]"]))
    tokenizer = ChatTokenizer(hf, None, {})
    model = tiny_model(hf.get_vocab_size())
    score = lm.score_text(model, tokenizer, TEXT, context=8)
    scored = tokenizer.encode(TEXT)[1 : score.tokens + 1]
    assert score.tokens == score.windows * 8
    assert score.characters == len(tokenizer.decode(scored, skip_special_tokens=False)) > score.tokens
    assert score.nats_per_character * score.characters == pytest.approx(score.nats_per_token * score.tokens)


def strided_by_hand(model: CausalLM, ids: torch.Tensor, context: int, stride: int) -> tuple[float, int]:
    """Each token t >= 1 scored from its own forward pass over the window that strided scoring gives it: the first
    window for t <= context, else the latest window (start a multiple of stride) whose last stride predictions hold
    it."""
    losses = []
    count = (len(ids) - 1 - context) // stride + 1
    with torch.no_grad():
        for t in range(1, context + (count - 1) * stride + 1):
            start = 0 if t <= context else ((t - 1 - context) // stride + 1) * stride
            window = ids[start : start + context]
            logits = model(window[None])[0, t - 1 - start]  # the prediction of token t
            losses.append(float(torch.nn.functional.cross_entropy(logits[None], ids[t : t + 1])))
    return sum(losses) / len(losses), len(losses)


@pytest.mark.parametrize(("context", "stride"), [(16, 4), (16, 1), (7, 3), (5, 5)])
def test_strided_windows_score_each_token_once_from_its_window(chars, context, stride):
    model, _, ids = chars
    ids = ids[:120]
    loss, tokens = lm.strided_loss(model, ids, stride, context=context, batch_size=3)
    want, count = strided_by_hand(model, ids, context, stride)
    assert tokens == count == context + ((len(ids) - 1 - context) // stride) * stride
    assert loss == pytest.approx(want, rel=1e-5)


def test_a_stride_of_the_whole_window_is_the_windowed_loss(chars):
    model, _, ids = chars
    loss, tokens = lm.strided_loss(model, ids, 16, windows=5)
    assert tokens == 5 * 16
    assert loss == pytest.approx(lm.windowed_loss(model, ids, windows=5), rel=1e-6)


def test_score_text_with_a_stride_counts_the_tokens_it_scored(chars):
    """With a stride, score_text reports strided_loss's tokens and windows (no loss by position: overlapping windows
    do not give one), and its figure is not the consecutive windows' one."""
    model, tokenizer, _ = chars
    consecutive = lm.score_text(model, tokenizer, TEXT, context=16)
    strided = lm.score_text(model, tokenizer, TEXT, context=16, stride=4)
    assert strided.stride == 4 and strided.by_position == {} and strided.to_dict()["stride"] == 4
    assert strided.characters == strided.tokens == 16 + (strided.windows - 1) * 4 >= consecutive.tokens
    assert strided.nats_per_token == pytest.approx(lm.strided_loss(model, chars[2], 4, context=16)[0], rel=1e-12)
    assert strided.nats_per_token != pytest.approx(consecutive.nats_per_token, rel=1e-6)


def test_stride_must_fit_the_window(chars):
    model, _, ids = chars
    for bad in (0, 17):
        with pytest.raises(ConfigError, match=f"stride must be in \\[1, 16\\].*{bad}"):
            lm.strided_loss(model, ids, bad)
    with pytest.raises(DataError, match="cannot fill one window of 16"):
        lm.strided_loss(model, ids[:16], 4)
