"""Abstractive summarization: an instruction to a chat model ("Summarize the following text in one sentence").

A document longer than the prompt budget is split, at sentence boundaries, into parts that fit; each part is
summarized, then the parts' summaries are summarized together (and the summary says so in its notes), so no
text is dropped silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tformer.decoding.generate import GenerationConfig, generate
from tformer.models.causal_lm import CausalLM
from tformer.summarize.extractive import Summary
from tformer.summarize.sentences import split_sentences

INSTRUCTION = "Summarize the following text in {count}. Reply with the summary only.\n\n{text}"
COUNTS = {1: "one sentence", 2: "two sentences", 3: "three sentences"}


class AbstractiveSummarizer:
    """A chat model (``CausalLM`` + its chat tokenizer) prompted to summarize; greedy decoding."""

    def __init__(self, model: CausalLM, tokenizer, max_new_tokens: int = 80, prompt_tokens: int = 1536) -> None:
        if prompt_tokens < 64:
            raise ValueError(f"prompt_tokens must be at least 64, got {prompt_tokens}")
        self.model, self.tokenizer = model.eval(), tokenizer
        self.max_new_tokens = max_new_tokens
        self.prompt_tokens = min(prompt_tokens, model.config.max_len - max_new_tokens)

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = "smollm2", **kwargs) -> AbstractiveSummarizer:
        from tformer.interop.gguf import load_gguf_tokenizer

        return cls(CausalLM.from_pretrained(name_or_path), load_gguf_tokenizer(name_or_path), **kwargs)

    def prompt(self, text: str, sentences: int = 1) -> str:
        count = COUNTS.get(sentences, f"{sentences} sentences")
        content = INSTRUCTION.format(count=count, text=text)
        return self.tokenizer.apply_chat_template([{"role": "user", "content": content}])

    def parts(self, document: Sequence[str], sentences: int = 1) -> list[str]:
        """The document's sentences grouped, in order, into texts whose prompts fit ``prompt_tokens``."""
        overhead = len(self.tokenizer.encode(self.prompt("", sentences)))
        budget = self.prompt_tokens - overhead
        groups: list[list[str]] = [[]]
        used = 0
        for sentence in document:
            size = len(self.tokenizer.encode(" " + sentence))
            if size > budget:
                raise ValueError(f"a sentence of {size} tokens does not fit the prompt budget of {budget} tokens")
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
        parts = self.parts(document, sentences)
        summaries = self.complete(parts, sentences)
        if len(parts) > 1:
            notes.append(f"the document is longer than the model's prompt budget ({self.prompt_tokens} tokens): "
                         f"it was summarized in {len(parts)} parts, then the parts' summaries together")
        while len(summaries) > 1:  # summaries of parts, summarized again until one is left
            summaries = self.complete(self.parts(summaries, sentences), sentences)
        result = split_sentences(summaries[0]) or [summaries[0]]
        if len(result) > sentences:  # small chat models often say more than asked: keep what was asked for
            notes.append(f"the model wrote {len(result)} sentences; the first {sentences} are kept")
            result = result[:sentences]
        return Summary(result, [], [], notes)
