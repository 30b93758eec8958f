"""Abstractive summarization: an instruction to a chat model ("Summarize the following text in one sentence").

A document longer than the prompt budget is split, at sentence boundaries, into parts that fit; each part is
summarized, then the parts' summaries are summarized together (and the summary says so in its notes), so no
text is dropped silently. A single sentence longer than the budget is cut at word boundaries first.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tformer.decoding.generate import GenerationConfig, generate
from tformer.models.causal_lm import CausalLM
from tformer.summarize.extractive import Summary
from tformer.summarize.sentences import cut_to_fit, split_sentences

INSTRUCTION = "Summarize the following text in {count}. Reply with the summary only.\n\n{text}"
# Named instructions. "paper" asks for a scientific abstract's main contribution: on SciTLDR-A it was the best of six
# wordings tried on 80 training abstracts (ROUGE-1 33.0 against 31.9 for "general") and scores 34.9 on the 619 dev
# abstracts, against 33.1 for "general" (docs/summarization.md).
INSTRUCTIONS = {
    "general": INSTRUCTION,
    "paper": "Summarize the main contribution of the following paper abstract in {count}. "
             "Reply with the summary only.\n\n{text}",
}


def resolve_instruction(name_or_text: str) -> str:
    """A named instruction (``general``, ``paper``) or a template of one's own holding ``{text}``."""
    if name_or_text in INSTRUCTIONS:
        return INSTRUCTIONS[name_or_text]
    if "{text}" not in name_or_text:
        raise ValueError(f"unknown instruction {name_or_text!r}: give one of {', '.join(INSTRUCTIONS)} or a template "
                         "holding {text} where the document goes (and {count} for the length)")
    return name_or_text
COUNTS = {1: "one sentence", 2: "two sentences", 3: "three sentences"}
MIN_PROMPT_TOKENS = 64  # the smallest prompt budget accepted
MIN_TEXT_TOKENS = 16  # the smallest share of it left for the text


class AbstractiveSummarizer:
    """A chat model (``CausalLM`` + its chat tokenizer) prompted to summarize; greedy decoding.

    ``instruction`` is the user message, with ``{count}`` ("one sentence") and ``{text}`` (the document) filled in,
    or the name of one of ``INSTRUCTIONS``.
    """

    def __init__(self, model: CausalLM, tokenizer, max_new_tokens: int = 80, prompt_tokens: int = 1536,
                 instruction: str = INSTRUCTION) -> None:
        instruction = resolve_instruction(instruction)
        if prompt_tokens < MIN_PROMPT_TOKENS:
            raise ValueError(f"prompt_tokens must be at least {MIN_PROMPT_TOKENS}, got {prompt_tokens}")
        room = model.config.max_len - max_new_tokens
        if room < MIN_PROMPT_TOKENS:
            raise ValueError(f"the model's context of {model.config.max_len} tokens leaves {room} for the prompt "
                             f"after {max_new_tokens} new tokens; a summary needs at least {MIN_PROMPT_TOKENS}")
        self.model, self.tokenizer = model.eval(), tokenizer
        self.max_new_tokens = max_new_tokens
        self.prompt_tokens = min(prompt_tokens, room)
        self.instruction = instruction

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = "smollm2", **kwargs) -> AbstractiveSummarizer:
        from tformer.interop.gguf import load_gguf_tokenizer

        return cls(CausalLM.from_pretrained(name_or_path), load_gguf_tokenizer(name_or_path), **kwargs)

    def prompt(self, text: str, sentences: int = 1) -> str:
        count = COUNTS.get(sentences, f"{sentences} sentences")
        content = self.instruction.replace("{count}", count).replace("{text}", text)
        return self.tokenizer.apply_chat_template([{"role": "user", "content": content}])

    def budget(self, sentences: int = 1) -> int:
        """Tokens of text one prompt can hold: ``prompt_tokens`` less the instruction and the chat template."""
        budget = self.prompt_tokens - len(self.tokenizer.encode(self.prompt("", sentences)))
        if budget < MIN_TEXT_TOKENS:
            raise ValueError(f"the prompt budget of {self.prompt_tokens} tokens leaves {budget} for the text after "
                             f"the instruction; at least {MIN_TEXT_TOKENS} are needed")
        return budget

    def size(self, text: str) -> int:
        return len(self.tokenizer.encode(" " + text))

    def fit(self, sentence: str, budget: int) -> list[str]:
        """``sentence``, or its pieces of at most ``budget`` tokens when it is longer (``cut_to_fit``)."""
        return cut_to_fit(sentence, self.size, budget)

    def parts(self, document: Sequence[str], sentences: int = 1) -> list[str]:
        """The document's sentences grouped, in order, into texts whose prompts fit ``prompt_tokens``; a sentence
        too long for one prompt is cut into pieces first (``fit``)."""
        budget = self.budget(sentences)
        groups: list[list[str]] = [[]]
        used = 0
        for sentence in (piece for s in document for piece in self.fit(s, budget)):
            size = self.size(sentence)
            if groups[-1] and used + size > budget:
                groups.append([])
                used = 0
            groups[-1].append(sentence)
            used += size
        return [" ".join(group) for group in groups]

    def complete(self, texts: Sequence[str], sentences: int = 1) -> list[str]:
        """The model's summary of each text (one batch)."""
        config = GenerationConfig(max_new_tokens=self.max_new_tokens, stop=["\n\n"])
        outputs = generate(self.model, self.tokenizer, [self.prompt(t, sentences) for t in texts], config)
        return [" ".join(out.split()) for out in outputs]

    def summarize(self, text: str, sentences: int = 1) -> Summary:
        return self.summarize_sentences(split_sentences(text), sentences)

    def summarize_sentences(self, document: Sequence[str], sentences: int = 1) -> Summary:
        if sentences < 1:
            raise ValueError(f"the number of summary sentences must be >= 1, got {sentences}")
        document = [s for s in document if s.strip()]
        if not document:
            raise ValueError("nothing to summarize: the document has no sentences")
        notes = []
        budget = self.budget(sentences)
        cut = sum(1 for s in document if self.size(s) > budget)
        if cut:
            notes.append(f"{cut} sentence(s) longer than the prompt budget ({budget} tokens of text) were cut at word "
                         "boundaries into pieces that fit")
        parts = self.parts(document, sentences)
        summaries = self.complete(parts, sentences)
        if len(parts) > 1:
            notes.append(f"the document is longer than the model's prompt budget ({self.prompt_tokens} tokens): "
                         f"it was summarized in {len(parts)} parts, then the parts' summaries together")
        while len(summaries) > 1:  # summaries of parts, summarized again until one is left
            grouped = self.parts(summaries, sentences)
            if len(grouped) == len(summaries):  # no two summaries fit one prompt: another round would not end
                raise ValueError(f"the summaries of the document's {len(parts)} parts are too long to summarize "
                                 "together; give the model a larger prompt budget (prompt_tokens)")
            summaries = self.complete(grouped, sentences)
        result = split_sentences(summaries[0])
        if not result:
            notes.append("the model wrote no summary (an empty answer)")
        if len(result) > sentences:  # small chat models often say more than asked: keep what was asked for
            notes.append(f"the model wrote {len(result)} sentences; the first {sentences} are kept")
            result = result[:sentences]
        return Summary(result, [], [], notes)
