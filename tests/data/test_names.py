import random
import re

from tformer.data.names import (
    HELD_OUT_NAMES,
    german_stems,
    pseudo_name,
    shared_name_pairs,
    substitute_names,
    substitute_wordlike_names,
    wordlike_name,
)


def test_pseudo_names_are_capitalised_letters_reproducible_and_never_held_out():
    names = [pseudo_name(random.Random(7)) for _ in range(3)]
    assert len(set(names)) == 1  # same seed, same name
    rng = random.Random(0)
    many = [pseudo_name(rng) for _ in range(5000)]
    assert all(re.fullmatch(r"[A-Z][a-z]{2,}", n) for n in many)
    assert not set(many) & HELD_OUT_NAMES
    assert len(set(many)) > 3000  # varied enough to force copying rather than memorising


def test_only_pairs_with_the_name_equally_often_on_both_sides_are_used():
    src = ["Tom schläft.", "Tom und Tom.", "Maria lacht.", "Tomate", "Mary isst."]
    tgt = ["Tom sleeps.", "Tom and Mary.", "Mary laughs.", "tomato", "Mary eats."]
    assert shared_name_pairs(src, tgt, ("Tom", "Mary")) == [(0, "Tom"), (4, "Mary")]


def test_substitution_replaces_the_name_on_both_sides_with_the_same_made_up_name():
    src = ["Tom schläft, weil Tom müde ist.", "Ich bin Tom.", "Das ist gut."]
    tgt = ["Tom sleeps because Tom is tired.", "I'm Tom.", "That's good."]
    new_src, new_tgt = substitute_names(src, tgt, ("Tom",), 50, seed=3)
    assert len(new_src) == len(new_tgt) == 50
    for s, t in zip(new_src, new_tgt):
        assert "Tom" not in s and "Tom" not in t
        name = s.split()[-1].rstrip(".") if s.startswith("Ich") else s.split()[0]
        assert s.count(name) == t.count(name) >= 1
    assert substitute_names(src, tgt, ("Tom",), 50, seed=3) == (new_src, new_tgt)  # seeded
    assert substitute_names(src, tgt, ("Tom",), 50, seed=4) != (new_src, new_tgt)
    assert substitute_names(src, tgt, ("Anna",), 5, seed=3) == ([], [])


def test_german_stems_are_the_most_frequent_short_words_in_a_fixed_order():
    sentences = ["Das Haus ist am Meer.", "Das Meer ist blau.", "Ein Haus, ein Meer, ein Wunderbares Haus."]
    assert german_stems(sentences, count=4) == ("ein", "haus", "meer", "das")  # ties alphabetically
    assert "wunderbares" not in german_stems(sentences)  # longer than 6 letters


def test_wordlike_names_contain_a_german_word_and_are_never_held_out_or_avoided():
    stems = ("meer", "haus", "teig", "weil")
    avoid = {"Meera", "Hausa"}
    rng = random.Random(2)
    names = [wordlike_name(rng, stems, avoid) for _ in range(4000)]
    assert all(re.fullmatch(r"[A-Z][a-z]{3,}", n) for n in names)
    assert all(any(s in n.lower() for s in stems) for n in names)
    assert sum(n.lower().startswith(stems) for n in names) > 1500  # the word at the start ...
    assert sum(n.lower().endswith(stems) for n in names) > 1000  # ... and at the end ("Zhiweil")
    assert not set(names) & (HELD_OUT_NAMES | avoid)
    new_src, new_tgt = substitute_wordlike_names(["Tom ist am Meer."] * 3, ["Tom is at the sea."] * 3, ("Tom",), 20,
                                                 seed=1)
    assert len(new_src) == 20 and all(s.split()[0] == t.split()[0] != "Tom" for s, t in zip(new_src, new_tgt))
