"""Abstractive summaries with a tiny random chat model: prompts carry the instruction and the text, long
documents are cut at sentence boundaries into parts that fit (never dropped), one summary comes back."""

import pytest
import torch

from tformer.models.causal_lm import CausalLM, CausalLMConfig
from tformer.summarize.abstractive import AbstractiveSummarizer

SENTENCES = [f"Sentence number {i} says something about topic {i % 3}." for i in range(12)]


class ByteTokenizer:
    """Bytes as tokens (ids 3..258), 0 pad, 1 bos, 2 eos; a chat template of plain markers."""

    def encode(self, text):
        return [1] + [b + 3 for b in text.encode()]

    def decode(self, ids, skip_special_tokens=True):
        return bytes(i - 3 for i in ids if i >= 3).decode(errors="replace")

    def apply_chat_template(self, messages, add_generation_prompt=True):
        return "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages) + "<assistant>"


def summarizer(prompt_tokens=4096, max_new_tokens=6):
    torch.manual_seed(0)
    config = CausalLMConfig.llama(vocab_size=259, d_model=24, num_layers=2, num_heads=3, num_kv_heads=1, d_ff=40,
                                  max_len=4200)
    return AbstractiveSummarizer(CausalLM(config), ByteTokenizer(), max_new_tokens, prompt_tokens)


def test_prompt_holds_the_instruction_and_the_text():
    s = summarizer()
    prompt = s.prompt("The cat sat.", 1)
    assert "in one sentence" in prompt and "The cat sat." in prompt and prompt.endswith("<assistant>")
    assert "in 4 sentences" in s.prompt("x", 4)
    s.instruction = "{text}\n\nTL;DR in {count}:"
    expected = "<user>Braces {count} stay.\n\nTL;DR in two sentences:</user><assistant>"
    assert s.prompt("Braces {count} stay.", 2) == expected  # the document's own braces are left alone
    with pytest.raises(ValueError, match="holding {text}"):
        AbstractiveSummarizer(s.model, s.tokenizer, instruction="Summarize.")


def test_named_instructions_are_templates_and_the_paper_one_asks_for_the_contribution():
    from tformer.summarize.abstractive import INSTRUCTIONS

    s = summarizer()
    for name, template in INSTRUCTIONS.items():
        named = AbstractiveSummarizer(s.model, s.tokenizer, 6, 4096, instruction=name)
        assert named.instruction == template and "{text}" in template and "{count}" in template
        assert "The cat sat." in named.prompt("The cat sat.", 1) and "one sentence" in named.prompt("x", 1)
    paper = AbstractiveSummarizer(s.model, s.tokenizer, 6, 4096, instruction="paper")
    assert "main contribution" in paper.prompt("x") and paper.prompt("x") != s.prompt("x")


@pytest.mark.parametrize("budget", [160, 300, 5000])
def test_parts_keep_every_sentence_in_order_and_fit_the_budget(budget):
    s = summarizer(prompt_tokens=budget)
    parts = s.parts(SENTENCES)
    assert " ".join(parts) == " ".join(SENTENCES)
    assert all(len(s.tokenizer.encode(s.prompt(p))) <= s.prompt_tokens + 1 for p in parts)
    assert (len(parts) == 1) == (budget == 5000)


def test_a_long_document_is_summarized_in_parts_with_a_note():
    s = summarizer(prompt_tokens=200)
    summary = s.summarize(" ".join(SENTENCES))
    assert summary.notes and "parts" in summary.notes[0]
    assert isinstance(summary.text, str)
    short = summarizer().summarize(" ".join(SENTENCES[:2]))
    assert not short.notes


def test_bad_input():
    s = summarizer(prompt_tokens=300)
    with pytest.raises(ValueError, match="no sentences"):
        s.summarize("   ")
    with pytest.raises(ValueError, match="leaves -1 for the text"):
        summarizer(prompt_tokens=100).parts(SENTENCES)
    torch.manual_seed(0)
    short = CausalLM(CausalLMConfig.llama(vocab_size=259, d_model=24, num_layers=1, num_heads=3, num_kv_heads=1,
                                          d_ff=40, max_len=100))
    with pytest.raises(ValueError, match="context of 100 tokens leaves 20 for the prompt"):
        AbstractiveSummarizer(short, ByteTokenizer(), max_new_tokens=80)


@pytest.mark.parametrize("sentence", [" ".join(f"w{i}" for i in range(150)), "x" * 700],
                         ids=["many words", "one long word"])
def test_a_sentence_longer_than_the_budget_is_cut_not_dropped(sentence):
    s = summarizer(prompt_tokens=300)
    budget = s.budget()
    pieces = s.fit(sentence, budget)
    assert len(pieces) > 1 and all(s.size(p) <= budget for p in pieces)
    joiner = " " if " " in sentence else ""
    assert joiner.join(pieces) == sentence
    parts = s.parts(["Short one.", sentence, "Last."])
    assert " ".join(parts).replace(" ", "") == ("Short one." + sentence + "Last.").replace(" ", "")
    summary = s.summarize(sentence)
    assert any("cut at word boundaries" in note for note in summary.notes)
