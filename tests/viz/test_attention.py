import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from tformer.inspect.attention import AttentionMaps
from tformer.viz.attention import attention_figure, panels, plot_attention

SOURCE = ["Ein", "Mann", "fährt", "Fahr", "##rad", "##.", "</s>"]
TARGET = ["A", "man", "rides", "a", "bike", "</s>"]


def cross_maps() -> AttentionMaps:
    weights = torch.rand(2, 3, len(TARGET), len(SOURCE)).softmax(-1)  # (layers, heads, tgt_len, src_len)
    return AttentionMaps(weights, TARGET, SOURCE, "cross", "Ein Mann fährt Fahrrad.")


def images(fig):
    """(title, array, x labels, y labels) of every heatmap in the figure."""
    out = []
    for ax in fig.axes:
        if ax.images and ax.get_title():
            out.append((ax.get_title(), ax.images[0].get_array().data, [t.get_text() for t in ax.get_xticklabels()],
                        [t.get_text() for t in ax.get_yticklabels()]))
    return out


def test_one_head_draws_its_weights_with_tokens_on_both_axes():
    maps = cross_maps()
    fig = attention_figure(maps, layer=2, head=3)
    [(title, data, xlabels, ylabels)] = images(fig)
    assert title == "layer 2, head 3"
    np.testing.assert_allclose(data, maps.weights[1, 2].numpy())
    assert xlabels == SOURCE and ylabels == TARGET
    assert fig._suptitle.get_text().startswith("Encoder-decoder (cross) attention (layer 2, head 3)\nEin Mann")
    assert fig._supxlabel.get_text() == "source token (key)"
    assert fig._supylabel.get_text() == "generated token (query)"
    plt.close(fig)


@pytest.mark.parametrize("layer, head, expected, which", [
    (1, None, [(1, 1), (1, 2), (1, 3)], "layer 1, all 3 heads"),
    (None, 2, [(1, 2), (2, 2)], "head 2 in all 2 layers"),
    (None, None, [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)], "2 layers x 3 heads"),
])
def test_grids_hold_the_selected_heads_in_order(layer, head, expected, which):
    maps = cross_maps()
    assert panels(maps, layer, head) == expected
    fig = attention_figure(maps, layer, head)
    drawn = images(fig)
    assert [title for title, *_ in drawn] == [f"layer {la}, head {h}" for la, h in expected]
    for (_, data, _, _), (la, h) in zip(drawn, expected):
        np.testing.assert_allclose(data, maps.weights[la - 1, h - 1].numpy())
    # tokens label the outer panels: the bottom row's x axis and the left column's y axis
    assert drawn[-1][2] == SOURCE and drawn[0][3] == TARGET
    assert fig._suptitle.get_text().startswith(f"Encoder-decoder (cross) attention ({which})")
    plt.close(fig)


def test_png_has_the_figure_size_and_is_not_blank(tmp_path):
    maps = cross_maps()
    fig = attention_figure(maps)
    width, height = fig.get_size_inches() * 80
    plt.close(fig)
    out = plot_attention(maps, tmp_path / "attn.png", dpi=80)
    pixels = matplotlib.image.imread(out)  # (height, width, RGBA)
    assert pixels.shape[:2] == (round(height), round(width))
    rgb = pixels[..., :3].reshape(-1, 3)
    assert rgb.std() > 0.1 and len(np.unique(rgb, axis=0)) > 100  # a heatmap's many colours, not a blank page


def test_layer_or_head_out_of_range_names_the_valid_range():
    with pytest.raises(ValueError, match="layer 3 is out of range: this model has 2 layers, numbered 1 to 2"):
        attention_figure(cross_maps(), layer=3)
    with pytest.raises(ValueError, match="head 4 is out of range: this model has 3 heads, numbered 1 to 3"):
        attention_figure(cross_maps(), head=4)


def test_focus_figure_draws_the_telling_heads_with_the_row_and_the_attended_word_marked():
    from tformer.inspect.focus import rank_heads
    from tformer.viz.attention import MARK, TARGET, focus_figure

    tokens = ["[CLS]", "the", "cat", "drank", "milk", "because", "it", "was", "hungry", "[SEP]"]
    torch.manual_seed(0)
    sentences = [AttentionMaps(torch.rand(2, 3, 10, 10).softmax(-1), tokens, tokens, "self", "s1"),
                 AttentionMaps(torch.rand(2, 3, 10, 10).softmax(-1), tokens, tokens, "self", "s2")]
    ranks = rank_heads(sentences, "it", ["cat", "milk"])
    fig = focus_figure(sentences, "it", ranks, heads=2, targets=["cat", "milk"], notes=["a note"])
    drawn = images(fig)
    assert len(drawn) == 4  # 2 sentences x 2 heads
    for i, (title, array, _, _) in enumerate(drawn):
        rank = ranks[i % 2]
        assert title.startswith(f"layer {rank.layer}, head {rank.head}: it -> ")
        np.testing.assert_allclose(array, sentences[i // 2].head(rank.layer, rank.head).numpy())
        ax = [a for a in fig.axes if a.images][i]
        column = rank.attended[i // 2][0]
        assert ax.get_xticklabels()[column].get_color() == MARK
        assert ax.get_yticklabels()[tokens.index("it")].get_color() == MARK
        target = tokens.index(["cat", "milk"][i // 2])
        if target != column:
            assert ax.get_xticklabels()[target].get_color() == TARGET
        assert len(ax.patches) == 2  # the row and the attended cell
    plt.close(fig)
