"""A generated reply grounded in retrieved passages: the chat model is given the numbered passages with the
instruction to answer only from them and to cite them by number."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tformer.retrieval.index import Hit

DEFAULT_CHAT_MODEL = "smollm2"  # SmolLM2-135M-Instruct (GGUF), as `tformer.CausalLM.from_pretrained` names it
INSTRUCTION = ("Answer the question using only the numbered passages. After each fact, cite the passage it comes "
               "from as [1], [2], ... If the passages do not contain the answer, say that you do not know.")


@dataclass
class GroundedReply:
    text: str
    sources: list[Hit]  # passage [i] is sources[i - 1]


def grounded_messages(question: str, passages: Sequence[Hit], max_chars: int = 1500) -> list[dict[str, str]]:
    """Chat messages: the instruction (system), then the numbered passages and the question (user)."""
    if not question.strip():
        raise ValueError("the question is empty")
    numbered = "\n\n".join(f"[{i}] ({hit.source}) {hit.text[:max_chars]}" for i, hit in enumerate(passages, 1))
    return [{"role": "system", "content": INSTRUCTION},
            {"role": "user", "content": f"Passages:\n\n{numbered}\n\nQuestion: {question}"}]


def generate_reply(question: str, passages: Sequence[Hit], model: str = DEFAULT_CHAT_MODEL,
                   max_new_tokens: int = 200) -> GroundedReply:
    """The chat model's reply to ``question`` from ``passages`` (greedy decoding)."""
    from tformer.decoding.generate import GenerationConfig, generate
    from tformer.interop.gguf import load_gguf_tokenizer
    from tformer.models.causal_lm import CausalLM

    lm, tokenizer = CausalLM.from_pretrained(model), load_gguf_tokenizer(model)
    prompt = tokenizer.apply_chat_template(grounded_messages(question, passages), add_generation_prompt=True)
    config = GenerationConfig(max_new_tokens=max_new_tokens, stop=["<|im_end|>"])
    [reply] = generate(lm, tokenizer, [prompt], config)
    return GroundedReply(reply.strip(), list(passages))
