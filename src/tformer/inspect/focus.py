"""What one token attends to, head by head, and which heads change their mind between two sentences.

This is the classic coreference illustration ("... because it was hungry" against "... because it was sweet"):
for each layer and head, the tokens that ``it`` gives the most weight to. Special tokens ([CLS], [SEP], </s>)
soak up much attention in many heads; they are left out of the ranking and their share is reported instead.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from tformer.inspect.attention import AttentionMaps

SPECIAL = re.compile(r"^(\[[A-Z]+\]|<[a-z/]+>)$")  # [CLS], [SEP], <s>, </s>, <pad>


@dataclass
class HeadFocus:
    layer: int  # from 1
    head: int  # from 1
    top: list[tuple[str, float]]  # the most-attended ordinary tokens with their weights, heaviest first
    special: float  # total weight on special tokens, which are not ranked

    @property
    def top_token(self) -> str:
        return self.top[0][0] if self.top else ""


def is_special(label: str) -> bool:
    return bool(SPECIAL.match(label))


def find_token(maps: AttentionMaps, token: str) -> int:
    """Row of the first query token equal to ``token`` (ignoring case and a leading '##').

    An unknown token is an error that lists the sentence's tokens.
    """
    wanted = token.strip().lower().removeprefix("##")
    for i, label in enumerate(maps.query_tokens):
        if label.lower().removeprefix("##") == wanted:
            return i
    raise ValueError(f"token {token!r} is not in the sentence {maps.text!r}; its tokens are: "
                     + " ".join(maps.query_tokens))


def focus(maps: AttentionMaps, token: str, top: int = 3) -> list[HeadFocus]:
    """For every layer and head (layer-major), the ``top`` tokens that ``token`` attends to most."""
    row = find_token(maps, token)
    special = [is_special(label) for label in maps.key_tokens]
    ordinary = [j for j, s in enumerate(special) if not s]
    result = []
    for layer in range(maps.num_layers):
        for head in range(maps.num_heads):
            weights = maps.weights[layer, head, row]  # (key_len,)
            ranked = sorted(ordinary, key=lambda j: -float(weights[j]))[:top]
            result.append(HeadFocus(
                layer + 1, head + 1, [(maps.key_tokens[j], float(weights[j])) for j in ranked],
                float(sum(float(weights[j]) for j, s in enumerate(special) if s)),
            ))
    return result


def changed_heads(first: list[HeadFocus], second: list[HeadFocus]) -> list[bool]:
    """Per head, whether its top token differs between two sentences' ``focus`` lists."""
    if [(f.layer, f.head) for f in first] != [(s.layer, s.head) for s in second]:
        raise ValueError("the two focus lists come from models with different layers or heads")
    return [a.top_token != b.top_token for a, b in zip(first, second)]


def format_focus(token: str, first: list[HeadFocus], second: list[HeadFocus] | None = None,
                 texts: tuple[str, ...] = ()) -> str:
    """A report, one line per layer and head; with a second sentence, heads whose top token differs get a '*'
    and a summary counts the changes, most frequent first."""
    lines = [f"What {token!r} attends to, per layer and head (top tokens with weights; special tokens are not "
             "ranked, their total weight is shown as 'special')."]
    lines += [f"sentence {i + 1}: {text}" for i, text in enumerate(texts)]
    changed = changed_heads(first, second) if second is not None else [False] * len(first)
    for i, head in enumerate(first):
        line = f"layer {head.layer:>2} head {head.head:>2}  {_describe(head)}"
        if second is not None:
            line += f"  ||  {_describe(second[i])}" + ("  *" if changed[i] else "")
        lines.append(line)
    if second is not None:
        moves = Counter((a.top_token, b.top_token) for a, b, c in zip(first, second, changed) if c)
        lines.append(f"* {sum(changed)} of {len(first)} heads have a different top token in sentence 2"
                     + (":" if moves else "."))
        lines += [f"  {a} -> {b}: {n} head{'s' if n > 1 else ''}" for (a, b), n in moves.most_common()]
    return "\n".join(lines)


def _describe(head: HeadFocus) -> str:
    words = " | ".join(f"{label} {weight:.2f}" for label, weight in head.top)
    return f"{words}  (special {head.special:.2f})"
