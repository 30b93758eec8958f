"""A conversation with a chat model: messages (role/content) -> the model's prompt through its chat template,
then the reply streamed in text pieces. Shared by ``tformer chat`` and the server's ``POST /chat``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace

from tformer.decoding.generate import GenerationConfig
from tformer.decoding.stepwise import continue_text
from tformer.models.causal_lm import CausalLM
from tformer.text.chat_tokenizer import ChatTokenizer

ROLES = ("system", "user", "assistant")
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>")  # turn-closing tokens of the common chat templates


def check_messages(messages: Sequence[dict[str, str]]) -> None:
    """Messages are dicts with a known ``role`` and a string ``content``; the last one is the user's."""
    if not messages:
        raise ValueError("messages is empty: give at least one {'role': 'user', 'content': ...}")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES or not isinstance(
                message.get("content"), str):
            raise ValueError(f"messages[{i}] must be {{'role': one of {', '.join(ROLES)}, 'content': text}}, "
                             f"got {message!r}")
    if messages[-1]["role"] != "user":
        raise ValueError(f"the last message must be the user's, got role {messages[-1]['role']!r}")


def end_ids(model: CausalLM, tokenizer: ChatTokenizer) -> list[int]:
    """Tokens that end the assistant's turn: the model's end token, the tokenizer's, and any end-of-turn token."""
    found = {model.config.eos_id}
    if tokenizer.eos_id is not None:
        found.add(tokenizer.eos_id)
    for text in END_OF_TURN:
        token = tokenizer.tokenizer.token_to_id(text)
        if token is not None:
            found.add(token)
    return sorted(found)


def chat_prompt_ids(
    model: CausalLM, tokenizer: ChatTokenizer, messages: Sequence[dict[str, str]], max_new_tokens: int
) -> list[int]:
    """The prompt's token ids. When the conversation does not fit the context with room for ``max_new_tokens``
    (at most half the context is kept for the reply), the oldest turns after the system message are dropped; a
    last user message that alone does not fit is an error naming the lengths."""
    check_messages(messages)
    kept = list(messages)
    room = model.config.max_len - min(max_new_tokens, model.config.max_len // 2)
    while True:
        ids = tokenizer.encode(tokenizer.apply_chat_template(kept, add_generation_prompt=True))
        first = 1 if kept[0]["role"] == "system" else 0
        if len(ids) <= room or len(kept) - first <= 1:
            break
        del kept[first]  # the oldest turn goes first
    if len(ids) > room:
        raise ValueError(f"the message is {len(ids)} tokens with the chat template; the context "
                         f"(max_len={model.config.max_len}) leaves {room} for it")
    return ids


def stream_reply(
    model: CausalLM, tokenizer: ChatTokenizer, messages: Sequence[dict[str, str]], config: GenerationConfig
) -> Iterator[str]:
    """The assistant's reply to ``messages`` in text pieces (none split inside a character)."""
    config = replace(config, eos_ids=end_ids(model, tokenizer) if config.eos_ids is None else config.eos_ids)
    ids = chat_prompt_ids(model, tokenizer, messages, config.max_new_tokens)
    for piece, _ in continue_text(model, tokenizer, ids, config, slide=False):
        if piece:
            yield piece
