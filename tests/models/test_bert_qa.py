"""BERT for question answering: the same logits as transformers' BertForQuestionAnswering both ways, the loss
formula, padding invariance, adapters, span decoding against brute force, and a tiny model that learns spans."""

import logging

import pytest
import torch

from tformer.data.squad import Window, make_windows
from tformer.models.bert import BertModel
from tformer.models.bert_qa import BertForQuestionAnswering
from tformer.models.qa_pipeline import QuestionAnswerer, best_spans, collate
from tformer.text.pretrained import Tokenizer

from tests.models.bert_helpers import save_tiny_encoder, tiny_bert_config, write_vocab_folder


def tiny_qa(folder=None, **overrides) -> BertForQuestionAnswering:
    model = BertForQuestionAnswering(tiny_bert_config(**overrides)).eval()
    if folder is not None:
        model.save_pretrained(folder)
        Tokenizer.from_pretrained(write_vocab_folder(folder)).save_pretrained(folder)
    return model


def padded_batch(vocab_size: int, lengths=(7, 5, 9)):
    ids = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    mask = torch.zeros_like(ids)
    types = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(5, vocab_size, (n,))
        mask[row, :n] = 1
        types[row, n // 2 : n] = 1
    return ids, mask, types


def test_saved_folder_gives_the_same_logits_in_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    model = tiny_qa(tmp_path)
    hf = transformers.AutoModelForQuestionAnswering.from_pretrained(tmp_path).eval()
    assert type(hf).__name__ == "BertForQuestionAnswering"
    ids, mask, types = padded_batch(model.config.vocab_size)
    ours = model(ids, mask, types)
    with torch.no_grad():
        theirs = hf(input_ids=ids, attention_mask=mask, token_type_ids=types)
    real = mask.bool()
    torch.testing.assert_close(ours.start_logits[real], theirs.start_logits[real], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ours.end_logits[real], theirs.end_logits[real], atol=1e-5, rtol=1e-4)


def test_model_saved_by_transformers_loads_with_the_same_logits(tmp_path):
    transformers = pytest.importorskip("transformers")
    c = tiny_bert_config()
    config = transformers.BertConfig(vocab_size=c.vocab_size, hidden_size=c.d_model, num_hidden_layers=c.num_layers,
                                     num_attention_heads=c.num_heads, intermediate_size=c.d_ff,
                                     max_position_embeddings=c.max_len, hidden_dropout_prob=0.0,
                                     attention_probs_dropout_prob=0.0)
    hf = transformers.BertForQuestionAnswering(config).eval()
    hf.save_pretrained(tmp_path)
    model = BertForQuestionAnswering.from_pretrained(tmp_path)
    ids, mask, types = padded_batch(c.vocab_size, (6, 9))
    with torch.no_grad():
        theirs = hf(input_ids=ids, attention_mask=mask, token_type_ids=types)
    out = model(ids, mask, types)
    real = mask.bool()
    torch.testing.assert_close(out.start_logits[real], theirs.start_logits[real], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out.end_logits[real], theirs.end_logits[real], atol=1e-5, rtol=1e-4)


def test_encoder_checkpoint_gets_a_new_head_and_keeps_the_encoder(tmp_path, caplog):
    save_tiny_encoder(tmp_path)
    with caplog.at_level(logging.INFO, logger="tformer"):
        model = BertForQuestionAnswering.from_pretrained(tmp_path)
    assert "no span head" in caplog.text
    encoder = BertModel.from_pretrained(tmp_path)
    ids, mask, types = padded_batch(encoder.config.vocab_size)
    torch.testing.assert_close(model.bert(ids, mask, types).last_hidden_state,
                               encoder(ids, mask, types).last_hidden_state)


def test_loss_is_the_mean_of_start_and_end_cross_entropy():
    model = tiny_qa()
    ids, mask, types = padded_batch(model.config.vocab_size)
    starts, ends = torch.tensor([1, 2, 3]), torch.tensor([4, 2, 6])
    out = model(ids, mask, types, starts, ends)
    expected = sum(-torch.log_softmax(logits, -1)[torch.arange(3), gold].mean()
                   for logits, gold in ((out.start_logits, starts), (out.end_logits, ends))) / 2
    torch.testing.assert_close(out.loss, expected)


def test_padding_does_not_change_a_window():
    model = tiny_qa()
    ids, mask, types = padded_batch(model.config.vocab_size, (5, 11))
    alone = model(ids[:1, :5], mask[:1, :5], types[:1, :5])
    batched = model(ids, mask, types)
    torch.testing.assert_close(batched.start_logits[0, :5], alone.start_logits[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batched.end_logits[0, :5], alone.end_logits[0], atol=1e-5, rtol=1e-5)


def test_save_load_round_trip_and_adapter(tmp_path):
    model = tiny_qa(tmp_path / "full")
    loaded = BertForQuestionAnswering.from_pretrained(tmp_path / "full")
    ids, mask, types = padded_batch(model.config.vocab_size)
    torch.testing.assert_close(loaded(ids, mask, types).start_logits, model(ids, mask, types).start_logits)
    # an adapter: change some parameters, store only those on top of the saved base
    with torch.no_grad():
        model.qa_outputs.weight.add_(0.5)
        model.bert.encoder.layers[1].ffn.linear1.weight.mul_(1.5)
    names = ["qa_outputs.weight", "bert.encoder.layers.1.ffn.linear1.weight"]
    model.save_adapter(tmp_path / "adapter", str(tmp_path / "full"), names)
    adapted = BertForQuestionAnswering.from_pretrained(tmp_path / "adapter")
    torch.testing.assert_close(adapted(ids, mask, types).end_logits, model(ids, mask, types).end_logits,
                               atol=2e-2, rtol=2e-2)  # float16 storage
    assert not torch.allclose(adapted.qa_outputs.weight, loaded.qa_outputs.weight)


def _window(n_question=3, n_context=6) -> Window:
    ids = list(range(5, 5 + n_question + n_context + 3))
    offsets = [None] * (n_question + 2) + [(2 * i, 2 * i + 1) for i in range(n_context)] + [None]
    max_context = [o is not None for o in offsets]
    return Window(0, ids, [0] * (n_question + 2) + [1] * (n_context + 1), offsets, max_context)


def test_best_spans_equal_brute_force_over_all_valid_pairs():
    window = _window()
    n = len(window.input_ids)
    start, end = torch.randn(n + 2), torch.randn(n + 2)  # padding beyond the window is ignored
    got = best_spans(start, end, window, n_best=n, max_answer_length=3)
    context = [i for i, o in enumerate(window.offsets) if o is not None]
    brute = sorted(((float(start[s] + end[e]), s, e) for s in context for e in context if s <= e < s + 3),
                   reverse=True)
    assert [(s, e) for _, s, e in got] == [(s, e) for _, s, e in brute]
    assert got[0][0] == pytest.approx(brute[0][0])


def test_tiny_model_learns_to_point_at_the_answer(tmp_path):
    """Questions 'where is X' over contexts naming things: overfit, then decode the exact characters."""
    torch.manual_seed(0)
    folder = write_vocab_folder(tmp_path)
    tokenizer = Tokenizer.from_pretrained(folder)
    model = tiny_qa(init_std=0.5)  # a wider start than BERT's 0.02: tiny models otherwise sit on a plateau
    cases = [("is the movie good", "the movie was good but the plot was dull", "good"),
             ("is the plot dull", "the movie was good but the plot was dull", "dull"),
             ("is it fun", "it is fun and lovely", "fun"),
             ("is it lovely", "it is fun and lovely", "lovely")]
    windows = []
    for i, (q, c, a) in enumerate(cases):
        windows += make_windows(tokenizer, q, c, max_length=30, doc_stride=8, answer=(c.rindex(a), a), example=i)
    batch = collate(windows, tokenizer.pad_id)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(120):
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    qa = QuestionAnswerer(model, tokenizer, max_length=30)
    for q, c, a in cases:
        span = qa.answer(q, c)[0]
        assert span.text == a and c[span.start : span.end] == a


def test_empty_and_too_long_questions_are_refused(tmp_path):
    folder = write_vocab_folder(tmp_path)
    qa = QuestionAnswerer(tiny_qa(), Tokenizer.from_pretrained(folder), max_length=30)
    with pytest.raises(ValueError, match="question is empty"):
        qa.answer("  ", "the movie was good")
    with pytest.raises(ValueError, match="context is empty"):
        qa.answer("is it good", [" "])
    with pytest.raises(ValueError, match="question is .* tokens long"):
        qa.answer(" ".join(["good"] * 20), "the movie was good")
