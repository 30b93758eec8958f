"""The tokenizer of a chat model: text <-> token ids with ``tokenizers``, and chat messages -> prompt text with the
model's Jinja chat template. Nothing is downloaded.

A GGUF file keeps a byte-level BPE ("gpt2" tokenizer model) as its token list, merges and token types, plus the
name of the pre-tokenizer its merges were learned with and the chat template: ``from_metadata`` rebuilds it.
Control tokens (``<|im_start|>``) are special tokens: matched whole in text, dropped when decoding with
``skip_special_tokens``. Reading files is ``tformer.interop``'s job: ``tformer.interop.gguf.load_gguf_tokenizer``,
``tformer.interop.hf_causal.load_chat_tokenizer`` (GGUF or a Hugging Face folder).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from tokenizers import AddedToken, decoders, models, pre_tokenizers
from tokenizers import Tokenizer as HFTokenizer

from tformer.errors import ConfigError

CONTROL, USER_DEFINED = 3, 4  # GGUF token types (llama.cpp's llama_token_type)
# GGUF ``tokenizer.ggml.pre`` -> how text is cut before the merges. "smollm" (SmolLM, SmolLM2) cuts every digit apart,
# as its Hugging Face tokenizer does (Digits(individual_digits=True)), then the GPT-2 split.
PRE_TOKENIZERS = {
    "default": lambda: pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    "gpt-2": lambda: pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    "smollm": lambda: pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ]),
}


class ChatTokenizer:
    """Text <-> token ids, and chat messages -> the prompt text the model was trained on."""

    def __init__(self, tokenizer: HFTokenizer, chat_template: str | None, special: dict[str, int | None]) -> None:
        self.tokenizer = tokenizer
        self.chat_template = chat_template
        self.bos_id, self.eos_id, self.pad_id = special.get("bos"), special.get("eos"), special.get("pad")
        self._template: Any = None

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], source: str = "GGUF file") -> ChatTokenizer:
        """From a GGUF file's metadata (``tokenizer.ggml.*``, ``tokenizer.chat_template``); reading the file is
        ``tformer.interop.gguf.load_gguf_tokenizer``'s job."""
        kind = meta.get("tokenizer.ggml.model")
        if kind != "gpt2":
            raise ConfigError(f"{source}: tokenizer model {kind!r} is not supported (only byte-level BPE, 'gpt2')")
        pre = meta.get("tokenizer.ggml.pre", "default")
        if pre not in PRE_TOKENIZERS:
            raise ConfigError(f"{source}: pre-tokenizer {pre!r} is not supported ({', '.join(PRE_TOKENIZERS)})")
        tokens: list[str] = list(meta["tokenizer.ggml.tokens"])
        merges = [tuple(m.split(" ", 1)) for m in meta.get("tokenizer.ggml.merges", [])]
        bpe = models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, fuse_unk=False)
        tokenizer = HFTokenizer(bpe)
        tokenizer.pre_tokenizer = PRE_TOKENIZERS[pre]()
        tokenizer.decoder = decoders.ByteLevel()
        types = list(meta.get("tokenizer.ggml.token_type") or [])
        tokenizer.add_special_tokens(
            [AddedToken(t, special=True, normalized=False) for t, k in zip(tokens, types) if k == CONTROL]
        )
        tokenizer.add_tokens(
            [AddedToken(t, special=False, normalized=False) for t, k in zip(tokens, types) if k == USER_DEFINED]
        )
        ids = {role: meta.get(f"tokenizer.ggml.{key}") for role, key in
               (("bos", "bos_token_id"), ("eos", "eos_token_id"), ("pad", "padding_token_id"))}
        return cls(tokenizer, meta.get("tokenizer.chat_template"), {k: _int(v) for k, v in ids.items()})

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; control tokens written in the text (``<|im_start|>``) become their ids."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def token_text(self, token_id: int) -> str:
        """The token as the vocabulary spells it (byte-level: "Ġ" is a space)."""
        return self.tokenizer.id_to_token(token_id) or ""

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes of one token: a multi-byte character may span several tokens (see streaming)."""
        return _byte_level_bytes(self.token_text(token_id))

    def apply_chat_template(
        self, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True
    ) -> str:
        """The prompt text for ``messages`` ([{"role": "user", "content": "..."}, ...]) rendered with the file's
        Jinja chat template; ``add_generation_prompt`` ends it with the assistant's turn opening."""
        if self.chat_template is None:
            raise ConfigError("this tokenizer has no chat template")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or not {"role", "content"} <= set(message):
                raise ValueError(f"message {i} must be a dict with 'role' and 'content', got {message!r}")
        special = {
            "bos_token": self.token_text(self.bos_id) if self.bos_id is not None else "",
            "eos_token": self.token_text(self.eos_id) if self.eos_id is not None else "",
        }
        return self._compiled_template().render(
            messages=list(messages), add_generation_prompt=add_generation_prompt, **special
        )

    def _compiled_template(self) -> Any:
        if self._template is None:
            from jinja2.sandbox import ImmutableSandboxedEnvironment

            def raise_exception(message: str) -> None:
                raise ValueError(f"chat template: {message}")

            # The settings chat templates are written for (as Hugging Face renders them).
            env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
            env.globals["raise_exception"] = raise_exception
            self._template = env.from_string(self.chat_template)
        return self._template


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _byte_level_bytes(text: str) -> bytes:
    """Undo the byte-level alphabet (GPT-2's): each character stands for one byte."""
    table = _unicode_to_byte()
    try:
        return bytes(table[c] for c in text)
    except KeyError:  # an added token written in plain text
        return text.encode("utf-8")


@functools.cache
def _unicode_to_byte() -> dict[str, int]:
    """GPT-2's byte <-> printable character table: printable Latin-1 bytes map to themselves, the other 68 bytes
    to characters from U+0100 on, in byte order."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for byte in range(256):
        if byte in keep:
            chars[chr(byte)] = byte
        else:
            chars[chr(256 + extra)] = byte
            extra += 1
    return chars
