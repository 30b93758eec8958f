import pytest
import torch

from tformer.inspect.attention import AttentionMaps
from tformer.inspect.focus import changed_heads, find_token, focus, format_focus

TOKENS = ["[CLS]", "the", "cat", "drank", "the", "milk", "because", "it", "was", "hungry", ".", "[SEP]"]
IT = TOKENS.index("it")


def maps_with(rows: dict[tuple[int, int], dict[str, float]], tokens=TOKENS, text="") -> AttentionMaps:
    """2 layers x 3 heads; the row of 'it' in head (layer, head) puts the given weights on the given tokens."""
    weights = torch.full((2, 3, len(tokens), len(tokens)), 1.0 / len(tokens))
    for (layer, head), row in rows.items():
        weights[layer - 1, head - 1, IT] = 0.0
        for token, w in row.items():
            weights[layer - 1, head - 1, IT, tokens.index(token)] = w
    return AttentionMaps(weights, tokens, tokens, "self", text)


def test_focus_ranks_ordinary_tokens_and_reports_the_special_tokens_share():
    maps = maps_with({(1, 2): {"[SEP]": 0.5, "cat": 0.3, "milk": 0.15, "it": 0.05},
                      (2, 3): {"[CLS]": 0.1, "milk": 0.6, "cat": 0.2, "hungry": 0.1}})
    heads = focus(maps, "it", top=2)
    assert [(h.layer, h.head) for h in heads] == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)]
    assert heads[1].top == [("cat", pytest.approx(0.3)), ("milk", pytest.approx(0.15))]
    assert heads[1].special == pytest.approx(0.5)
    assert heads[5].top_token == "milk" and heads[5].special == pytest.approx(0.1)
    assert heads[0].special == pytest.approx(2 / len(TOKENS))  # uniform row: [CLS] and [SEP]


def test_heads_whose_top_token_differs_are_marked_and_counted():
    hungry = maps_with({(1, 2): {"cat": 0.7, "milk": 0.3}, (2, 1): {"cat": 0.6, "milk": 0.4}}, text="... hungry.")
    sweet = maps_with({(1, 2): {"cat": 0.2, "milk": 0.8}, (2, 1): {"cat": 0.6, "milk": 0.4}}, text="... sweet.")
    first, second = focus(hungry, "it"), focus(sweet, "it")
    assert changed_heads(first, second) == [False, True, False, False, False, False]
    report = format_focus("it", first, second, (hungry.text, sweet.text)).splitlines()
    assert report[1:3] == ["sentence 1: ... hungry.", "sentence 2: ... sweet."]
    head_lines = report[3:9]
    assert [line.endswith("*") for line in head_lines] == [False, True, False, False, False, False]
    assert head_lines[1].startswith("layer  1 head  2  cat 0.70 | milk 0.30")
    assert report[9:] == ["* 1 of 6 heads have a different top token in sentence 2:", "  cat -> milk: 1 head"]


def test_unknown_token_lists_the_sentence_tokens():
    maps = maps_with({}, text="The cat drank the milk because it was hungry.")
    assert find_token(maps, "IT") == IT and find_token(maps, "cat") == 2
    with pytest.raises(ValueError) as err:
        focus(maps, "dog")
    assert str(err.value) == ("token 'dog' is not in the sentence 'The cat drank the milk because it was hungry.'; "
                              "its tokens are: " + " ".join(TOKENS))


def test_heads_of_different_models_cannot_be_compared():
    small = AttentionMaps(torch.rand(1, 3, 12, 12), TOKENS, TOKENS, "self")
    with pytest.raises(ValueError, match="different layers or heads"):
        changed_heads(focus(small, "it"), focus(maps_with({}), "it"))


def test_select_keeps_one_layer_one_head_or_both():
    heads = focus(maps_with({}), "it")
    from tformer.inspect.focus import select

    assert [(h.layer, h.head) for h in select(heads, layer=2)] == [(2, 1), (2, 2), (2, 3)]
    assert [(h.layer, h.head) for h in select(heads, head=3)] == [(1, 3), (2, 3)]
    assert [(h.layer, h.head) for h in select(heads, 1, 2)] == [(1, 2)]


def test_heads_that_switch_between_the_claimed_words_rank_first_and_the_claim_is_checked():
    from tformer.inspect.focus import claim_report, rank_heads

    hungry = maps_with({(1, 2): {"cat": 0.7, "milk": 0.1, "[SEP]": 0.2}, (2, 1): {"cat": 0.5, "milk": 0.4},
                        (2, 3): {"milk": 0.6, "cat": 0.3}})
    sweet = maps_with({(1, 2): {"cat": 0.1, "milk": 0.7, "[SEP]": 0.2}, (2, 1): {"cat": 0.5, "milk": 0.4},
                       (2, 3): {"milk": 0.6, "cat": 0.3}})
    ranks = rank_heads([hungry, sweet], "it", ["cat", "milk"])
    assert (ranks[0].layer, ranks[0].head) == (1, 2)
    assert ranks[0].score == pytest.approx(((0.7 - 0.1) + (0.7 - 0.1)) / 2)
    assert [a[1] for a in ranks[0].attended] == ["cat", "milk"] and ranks[0].target_weights == pytest.approx([0.7, 0.7])
    # heads treating "it" the same in both sentences tell nothing: score 0 for the uniform ones and (2, 1)
    assert {(r.layer, r.head): r.score for r in ranks}[(2, 1)] == pytest.approx(0.1 - 0.1, abs=1e-6)
    report = claim_report(ranks, "it", ["cat", "milk"])
    assert report[0].startswith("sentence 1: 2 of 6 heads link 'it' most strongly to 'cat'; the strongest is layer 1")
    assert report[1].startswith("sentence 2: 2 of 6 heads link 'it' most strongly to 'milk'")
    assert report[2] == "1 head follow the claim in every sentence: layer 1 head 2"
    only_layer_2 = rank_heads([hungry, sweet], "it", ["cat", "milk"], layer=2)
    assert sorted((r.layer, r.head) for r in only_layer_2) == [(2, 1), (2, 2), (2, 3)]


def test_without_targets_heads_rank_by_how_far_apart_the_two_rows_are():
    from tformer.inspect.focus import rank_heads

    a = maps_with({(2, 2): {"cat": 1.0}})
    b = maps_with({(2, 2): {"milk": 1.0}})
    ranks = rank_heads([a, b], "it")
    assert (ranks[0].layer, ranks[0].head) == (2, 2) and ranks[0].score == pytest.approx(1.0)
    assert all(r.score == pytest.approx(0.0, abs=1e-6) for r in ranks[1:])


def test_when_no_head_makes_the_link_it_is_said_plainly():
    from tformer.inspect.focus import claim_report, rank_heads

    maps = maps_with({(1, 1): {"milk": 0.8, "cat": 0.05}, (2, 2): {"hungry": 0.6, "cat": 0.1}})
    ranks = rank_heads([maps], "it", ["cat"])
    assert (ranks[0].layer, ranks[0].head) == (2, 2)  # the most weight on the claimed word
    [line] = claim_report(ranks, "it", ["cat"])
    assert line.startswith("sentence 1: no head links 'it' most strongly to 'cat', as the text claims; the most "
                           "weight any head gives 'cat' is")


def test_presets_name_words_of_their_own_sentences():
    from tformer.inspect.focus import PRESETS

    for preset in PRESETS.values():
        assert len(preset.targets) == len(preset.sentences)
        for sentence, target in zip(preset.sentences, preset.targets):
            words = sentence.lower().replace(".", " ").replace(",", " ").split()
            assert preset.token in words and target in words
