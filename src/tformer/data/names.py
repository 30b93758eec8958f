"""Name substitution: teach a translation model to copy names it has never seen.

A name such as "Tom" is written the same way in German and English, and Tatoeba uses it in tens of thousands of
pairs; but a model trained on them learns "Tom" as a word, not "copy whatever name stands here". Replacing the
shared name by a freshly generated one in both sides of a pair ("Ich bin Tom." / "I'm Tom." becomes
"Ich bin Zhavira." / "I'm Zhavira.") gives pairs whose only solution is to copy the subwords through.

Generated names are built from syllables, so their subword segmentations vary widely. A set of real names kept
for evaluation (``HELD_OUT_NAMES``) is never generated, so copy tests measure generalisation, not memory.

Syllable names rarely look like German words, but real ones often begin like one ("Meera": "Meer" is "sea"), and
a model then translates the German piece ("Solveig" came out as "Solv dough": "Teig"). ``wordlike_name`` makes
such names on purpose from the frequent German words of the training text ("Meerita", "Zhiweil"), so the only
right English is a copy.
"""

from __future__ import annotations

import functools
import random
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable

ONSETS = ("", "", "b", "c", "ch", "d", "dh", "f", "g", "gh", "h", "j", "k", "kh", "l", "m", "n", "p", "ph",
          "q", "r", "s", "sh", "t", "th", "v", "w", "x", "y", "z", "zh", "br", "kr", "pr", "st", "tr", "bh")
VOWELS = ("a", "a", "e", "i", "i", "o", "u", "y", "aa", "ee", "ia", "ai", "ou", "ya", "iy", "au", "ey", "oo")
CODAS = ("", "", "", "n", "m", "r", "sh", "l", "s", "k", "t", "th", "nd", "sh", "v", "j", "x", "h")

# Real names from several languages, never produced by ``pseudo_name``: the names copy tests are made of. All but
# two are absent from Multi30k train and Tatoeba train ("Fatima" occurs 8 times there, "Hiroshi" 4 times).
HELD_OUT_NAMES = frozenset({
    "Piyush", "Anjali", "Kavya", "Rahul", "Priya", "Arjun", "Oluwaseun", "Chidi", "Ngozi", "Siobhan", "Aoife",
    "Xiaoming", "Mei", "Hiroshi", "Yuki", "Dmitri", "Svetlana", "Mateo", "Lucia", "Fatima", "Omar", "Kwame",
    "Ingrid", "Bjorn", "Tariq", "Zainab", "Nikhil", "Deepa", "Jurgen", "Renata", "Thabo", "Amara", "Keanu",
})


def pseudo_name(rng: random.Random, vowel_share: float = 0.0, avoid: Collection[str] = ()) -> str:
    """A capitalised, pronounceable made-up name of one to three syllables (never one of ``HELD_OUT_NAMES`` or
    ``avoid``). With ``vowel_share`` > 0, that share of names starts with a vowel ("Aoravi", "Iyesh"); at 0 the
    names (and the random numbers drawn) are those of the original generator."""
    while True:
        syllables = rng.choice((1, 2, 2, 2, 3, 3))
        vowel_first = vowel_share > 0 and rng.random() < vowel_share
        name = "".join(("" if i == 0 and vowel_first else rng.choice(ONSETS)) + rng.choice(VOWELS)
                       for i in range(syllables)) + rng.choice(CODAS)
        name = name.capitalize()
        if len(name) >= 3 and name not in HELD_OUT_NAMES and name not in avoid:
            return name


# Endings that turn a German word into something name-like; the longer ones make long names ("Bergamina").
NAME_ENDINGS = ("a", "o", "i", "e", "ia", "ina", "ela", "ika", "ita", "ana", "ek", "an", "on", "el", "ar", "en",
                "us", "iya", "ou", "ko", "ara", "emi", "ila", "anda", "ouma", "enka")
WORD = re.compile(r"[a-zäöü]+")


def german_stems(sentences: Iterable[str], count: int = 3000) -> tuple[str, ...]:
    """The ``count`` most frequent words of 3-6 letters in ``sentences`` (lower-cased, ties alphabetically): the
    German parts of ``wordlike_name``."""
    counts = Counter(w for s in sentences for w in WORD.findall(s.lower()) if 3 <= len(w) <= 6)
    return tuple(sorted(counts, key=lambda w: (-counts[w], w))[:count])


def wordlike_name(rng: random.Random, stems: tuple[str, ...], avoid: Collection[str] = ()) -> str:
    """A made-up name with a German word of ``stems`` in it: at the start with a name ending ("Meerita",
    "Hausek"), or at the end after a syllable or two ("Zhiweil", "Sokateig"). Never one of ``HELD_OUT_NAMES`` or
    ``avoid``."""
    while True:
        stem = rng.choice(stems)
        if rng.random() < 0.6:
            middle = rng.choice(ONSETS) + rng.choice(VOWELS) if rng.random() < 0.3 else ""
            name = stem + middle + rng.choice(NAME_ENDINGS)
        else:
            name = "".join(rng.choice(ONSETS) + rng.choice(VOWELS) for _ in range(rng.choice((1, 1, 2)))) + stem
        name = name.capitalize()
        if len(name) >= 4 and name not in HELD_OUT_NAMES and name not in avoid:
            return name


@functools.cache
def word_pattern(name: str) -> re.Pattern[str]:
    """``name`` as a whole word: "Tom" in "Tom's" and "(Tom)", not in "Tomate"."""
    return re.compile(rf"\b{re.escape(name)}\b")


def shared_name_pairs(
    src: list[str], tgt: list[str], names: tuple[str, ...]
) -> list[tuple[int, str]]:
    """(index, name) for pairs in which ``name`` occurs as a word equally often (and at least once) on both sides."""
    found = []
    for i, (s, t) in enumerate(zip(src, tgt)):
        for name in names:
            pattern = word_pattern(name)
            n = len(pattern.findall(s))
            if n and n == len(pattern.findall(t)):
                found.append((i, name))
                break
    return found


def substitute_names(
    src: list[str], tgt: list[str], names: tuple[str, ...], count: int, seed: int, vowel_share: float = 0.0,
    avoid: Collection[str] = (),
) -> tuple[list[str], list[str]]:
    """``count`` new pairs: seeded picks of pairs sharing a name, the name replaced by a generated one on both sides
    (``pseudo_name`` with ``vowel_share`` and ``avoid``).

    The same pair may be picked again (with another name) when ``count`` exceeds the pairs available.
    """
    return _substitute(src, tgt, names, count, seed, lambda rng: pseudo_name(rng, vowel_share, avoid))


def substitute_wordlike_names(
    src: list[str], tgt: list[str], names: tuple[str, ...], count: int, seed: int, avoid: Collection[str] = (),
) -> tuple[list[str], list[str]]:
    """As ``substitute_names``, with ``wordlike_name`` names made from the German side's frequent words."""
    if count <= 0:
        return [], []
    stems = german_stems(src)
    return _substitute(src, tgt, names, count, seed, lambda rng: wordlike_name(rng, stems, avoid))


def _substitute(
    src: list[str], tgt: list[str], names: tuple[str, ...], count: int, seed: int,
    make_name: Callable[[random.Random], str],
) -> tuple[list[str], list[str]]:
    candidates = shared_name_pairs(src, tgt, names) if count > 0 else []
    if not candidates:
        return [], []
    rng = random.Random(seed)
    new_src, new_tgt = [], []
    for _ in range(count):
        i, name = rng.choice(candidates)
        fresh = make_name(rng)
        new_src.append(word_pattern(name).sub(fresh, src[i]))
        new_tgt.append(word_pattern(name).sub(fresh, tgt[i]))
    return new_src, new_tgt
