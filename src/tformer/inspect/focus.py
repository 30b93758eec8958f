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


def select(heads: list[HeadFocus], layer: int | None = None, head: int | None = None) -> list[HeadFocus]:
    """The entries of ``focus`` for one layer, one head (in every layer), or both; all when neither is given."""
    return [h for h in heads if (layer is None or h.layer == layer) and (head is None or h.head == head)]


@dataclass(frozen=True)
class Preset:
    """A sentence (or two) from the text this project was built from, the word looked at, and the word per
    sentence that the text says it links to."""

    sentences: tuple[str, ...]
    token: str  # the query word, as the tokenizer writes it (MiniLM lower-cases)
    targets: tuple[str, ...]  # per sentence, the word the text says ``token`` links to
    claim: str  # the text's claim, in words


PRESETS = {
    "it-cat": Preset(("The cat drank the milk because it was hungry.", "The cat drank the milk because it was sweet."),
                     "it", ("cat", "milk"), "'it' is the cat when it was hungry, the milk when it was sweet"),
    "that-country": Preset(("XYZ went to France in 2019 when there were no cases of COVID and there, he met the "
                            "president of that country.",), "country", ("france",), "'that country' is France"),
    "sat-cat": Preset(("The cat sat on the mat.",), "sat", ("cat",), "to understand 'sat', attend to 'cat'"),
}


@dataclass
class HeadRank:
    """One head's treatment of the query word in each sentence, and how telling it is (``score``, higher = more)."""

    layer: int  # from 1
    head: int  # from 1
    score: float
    rows: list[int]  # per sentence, the query word's row
    attended: list[tuple[int, str, float]]  # per sentence: (column, word, weight) of the word attended to most
    target_weights: list[float]  # per sentence, the weight on that sentence's target word (empty without targets)


def _word(label: str) -> str:
    return label.lower().removeprefix("##")


def _attended(maps: AttentionMaps, row: int, weights) -> tuple[int, str, float]:
    """The column the row attends to most among ordinary tokens other than itself (specials soak up weight)."""
    columns = [j for j, label in enumerate(maps.key_tokens) if not is_special(label) and j != row] or [row]
    best = max(columns, key=lambda j: float(weights[j]))
    return best, maps.key_tokens[best], float(weights[best])


def _word_weights(maps: AttentionMaps, weights) -> dict[str, float]:
    """The row's weight on each ordinary word (a word met twice gets the sum)."""
    out: dict[str, float] = {}
    for j, label in enumerate(maps.key_tokens):
        if not is_special(label):
            out[_word(label)] = out.get(_word(label), 0.0) + float(weights[j])
    return out


def rank_heads(sentences: list[AttentionMaps], token: str, targets: tuple[str, ...] | list[str] | None = None,
               layer: int | None = None, head: int | None = None) -> list[HeadRank]:
    """Every head (or those of ``layer``/``head``), most telling first.

    With two or more sentences, a head is telling when it treats ``token`` differently across them: with
    ``targets`` (the word each sentence should link it to), the weight on the sentence's own target minus the
    weight on the other sentences' targets, averaged; without, the total-variation distance between the word
    weights of each pair of sentences. With one sentence: the weight on its target, or else on the word attended
    to most.
    """
    if targets is not None and len(targets) != len(sentences):
        raise ValueError(f"give one target word per sentence: {len(sentences)} sentences, {len(targets)} targets")
    rows = [find_token(m, token) for m in sentences]
    columns = [find_token(m, t) for m, t in zip(sentences, targets)] if targets else []
    ranks = []
    for la in range(1, sentences[0].num_layers + 1):
        for h in range(1, sentences[0].num_heads + 1):
            if (layer is None or la == layer) and (head is None or h == head):
                ranked = [m.head(la, h)[r] for m, r in zip(sentences, rows)]  # per sentence, (key_len,)
                attended = [_attended(m, r, w) for m, r, w in zip(sentences, rows, ranked)]
                target_weights = [float(w[c]) for w, c in zip(ranked, columns)]
                score = _score(sentences, ranked, attended, targets)
                ranks.append(HeadRank(la, h, score, rows, attended, target_weights))
    return sorted(ranks, key=lambda r: -r.score)


def _score(sentences: list[AttentionMaps], rows: list, attended: list[tuple[int, str, float]],
           targets: tuple[str, ...] | list[str] | None) -> float:
    words = [_word_weights(m, w) for m, w in zip(sentences, rows)]
    n = len(sentences)
    if targets:
        wanted = [_word(t) for t in targets]
        if n == 1:
            return words[0].get(wanted[0], 0.0)
        return sum(words[i].get(wanted[i], 0.0) - sum(words[i].get(wanted[j], 0.0) for j in range(n) if j != i)
                   / (n - 1) for i in range(n)) / n
    if n == 1:
        return attended[0][2]
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    return sum(0.5 * sum(abs(words[i].get(k, 0.0) - words[j].get(k, 0.0)) for k in {*words[i], *words[j]})
               for i, j in pairs) / len(pairs)


def claim_report(ranks: list[HeadRank], token: str, targets: tuple[str, ...] | list[str]) -> list[str]:
    """Per sentence, how many heads link ``token`` most strongly to the target word, and the strongest; said plainly
    when no head does. With several sentences, the heads that follow the claim in every one of them."""
    lines = []
    for i, target in enumerate(targets):
        linking = [r for r in ranks if _word(r.attended[i][1]) == _word(target)]
        if linking:
            best = max(linking, key=lambda r: r.attended[i][2])
            lines.append(f"sentence {i + 1}: {len(linking)} of {len(ranks)} heads link {token!r} most strongly to "
                         f"{target!r}; the strongest is layer {best.layer}, head {best.head} "
                         f"({best.attended[i][2]:.2f})")
        else:
            best = max(ranks, key=lambda r: r.target_weights[i])
            lines.append(f"sentence {i + 1}: no head links {token!r} most strongly to {target!r}, as the text claims; "
                         f"the most weight any head gives {target!r} is {best.target_weights[i]:.2f} (layer "
                         f"{best.layer}, head {best.head})")
    if len(targets) > 1:
        every = [r for r in ranks if all(_word(r.attended[i][1]) == _word(t) for i, t in enumerate(targets))]
        if every:
            names = ", ".join(f"layer {r.layer} head {r.head}" for r in every[:6]) + (" ..." if len(every) > 6 else "")
            lines.append(f"{len(every)} head{'s' if len(every) != 1 else ''} follow the claim in every sentence: "
                         f"{names}")
        else:
            lines.append("no head follows the claim in every sentence: the link the text describes is not made by "
                         "any single head of this model")
    return lines


def format_ranking(ranks: list[HeadRank], token: str, count: int = 5) -> str:
    """The ``count`` most telling heads, one line each: score, and per sentence the word attended to most."""
    lines = [f"The {min(count, len(ranks))} heads that tell most about {token!r} (score; per sentence, the word it "
             "attends to most):"]
    for r in ranks[:count]:
        words = "  |  ".join(f"{word} {weight:.2f}" for _, word, weight in r.attended)
        lines.append(f"layer {r.layer:>2} head {r.head:>2}  score {r.score:.2f}  {words}")
    return "\n".join(lines)
