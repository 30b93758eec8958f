"""Attention heatmaps with tokens on both axes: one head, one layer's heads, one head across layers, or everything.

Rows are queries, columns are keys; each row sums to 1. All panels of a figure share one colour scale (0 to the
largest weight shown), so panels can be compared by eye.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from tformer.inspect.attention import AttentionMaps  # noqa: E402
from tformer.inspect.focus import HeadRank  # noqa: E402

MARK = "#d62728"  # the query word's row and the word it attends to most
TARGET = "#2ca02c"  # the word the text says it should link to


def panels(maps: AttentionMaps, layer: int | None = None, head: int | None = None) -> list[tuple[int, int]]:
    """The (layer, head) pairs to draw, counted from 1, layer-major."""
    maps.check(layer, head)
    layers = [layer] if layer is not None else range(1, maps.num_layers + 1)
    heads = [head] if head is not None else range(1, maps.num_heads + 1)
    return [(la, h) for la in layers for h in heads]


def attention_figure(maps: AttentionMaps, layer: int | None = None, head: int | None = None) -> Figure:
    """A figure with one heatmap per (layer, head) from ``panels``.

    Everything: a grid of layers (rows) by heads (columns). One layer's heads, or one head across layers: a
    near-square grid read left to right, top to bottom.
    """
    chosen = panels(maps, layer, head)
    n = len(chosen)
    cols = maps.num_heads if layer is None and head is None else math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    n_q, n_k = len(maps.query_tokens), len(maps.key_tokens)
    cell = 0.28 if n == 1 else 0.16  # inches per token
    width = max(2.4, cell * n_k + 0.6) * cols + 1.8
    height = max(2.4, cell * n_q + 0.6) * rows + 1.6
    fig, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False, layout="constrained")
    vmax = max(float(maps.head(la, h).max()) for la, h in chosen) or 1.0
    font = 9 if n == 1 else 6
    for i, (la, h) in enumerate(chosen):
        ax = axes[divmod(i, cols)]
        image = ax.imshow(maps.head(la, h).numpy(), cmap="viridis", vmin=0.0, vmax=vmax, aspect="auto")
        ax.set_title(f"layer {la}, head {h}", fontsize=font + 1)
        # token labels on the outer panels only (the lowest of each column, the first of each row)
        ax.set_xticks(range(n_k), maps.key_tokens if i + cols >= n else [""] * n_k, rotation=90, fontsize=font)
        ax.set_yticks(range(n_q), maps.query_tokens if i % cols == 0 else [""] * n_q, fontsize=font)
    for ax in axes.flat[n:]:
        ax.set_axis_off()
    fig.colorbar(image, ax=axes, shrink=0.6 if rows > 1 else 0.9, label="attention weight")
    query_axis, key_axis = maps.axis_labels
    fig.supylabel(query_axis)
    fig.supxlabel(key_axis)
    title = f"{maps.description[0].upper()}{maps.description[1:]} ({_which(maps, layer, head)})"
    if maps.text:
        title += "\n" + textwrap.shorten(maps.text, width=max(40, int(width * 9)), placeholder=" ...")
    fig.suptitle(title)
    return fig


def _which(maps: AttentionMaps, layer: int | None, head: int | None) -> str:
    if layer is not None and head is not None:
        return f"layer {layer}, head {head}"
    if layer is not None:
        return f"layer {layer}, all {_count(maps.num_heads, 'head')}"
    if head is not None:
        return f"head {head} in all {_count(maps.num_layers, 'layer')}"
    return f"{_count(maps.num_layers, 'layer')} x {_count(maps.num_heads, 'head')}"


def plot_attention(maps: AttentionMaps, out_png: str | Path, layer: int | None = None, head: int | None = None,
                   dpi: int = 100) -> Path:
    """Draw ``attention_figure`` into a PNG file and return its path."""
    fig = attention_figure(maps, layer, head)
    out_png = Path(out_png)
    fig.savefig(out_png, dpi=dpi)
    plt.close(fig)
    return out_png


def focus_figure(sentences: list[AttentionMaps], token: str, ranks: list[HeadRank], heads: int = 3,
                 targets: tuple[str, ...] | list[str] | None = None, notes: list[str] | None = None) -> Figure:
    """The ``heads`` most telling heads of ``rank_heads``, large: one row of panels per sentence, one column per head.

    In each panel the row of ``token`` is outlined, the cell of the word it attends to most is boxed and that word's
    label is red; the target word (when given) is green. ``notes`` (e.g. ``claim_report``) go under the panels.
    """
    chosen = ranks[:heads]
    rows, cols = len(sentences), len(chosen)
    cell = 0.3  # inches per token
    n_max = max(len(m.key_tokens) for m in sentences)
    fig, axes = plt.subplots(rows, cols, figsize=(max(3.2, cell * n_max + 1.2) * cols + 1.0,
                                                  max(3.0, cell * n_max + 1.4) * rows + 1.2 + 0.25 * len(notes or [])),
                             squeeze=False, layout="constrained")
    for i, maps in enumerate(sentences):
        for k, rank in enumerate(chosen):
            _focus_panel(axes[i, k], maps, rank, i, targets[i] if targets else None)
            if k == 0:
                axes[i, k].set_ylabel(textwrap.shorten(f"sentence {i + 1}: {maps.text}", 70, placeholder=" ..."),
                                      fontsize=9)
    fig.suptitle(f"What {token!r} attends to, in the {_count(cols, 'head')} that tell most about it "
                 f"(red: the {token!r} row and the word it attends to most" + (", green: the word the text names"
                                                                                 if targets else "") + ")")
    if notes:
        fig.supxlabel("\n".join(notes), fontsize=9)
    return fig


def _focus_panel(ax, maps: AttentionMaps, rank: HeadRank, sentence: int, target: str | None) -> None:
    weights = maps.head(rank.layer, rank.head).numpy()
    row = rank.rows[sentence]
    column, word, weight = rank.attended[sentence]
    ax.imshow(weights, cmap="Blues", vmin=0.0, vmax=1.0, aspect="equal")
    n_q, n_k = weights.shape
    ax.add_patch(Rectangle((-0.5, row - 0.5), n_k, 1, fill=False, edgecolor=MARK, linewidth=2))
    ax.add_patch(Rectangle((column - 0.5, row - 0.5), 1, 1, fill=False, edgecolor=MARK, linewidth=3))
    ax.set_xticks(range(n_k), maps.key_tokens, rotation=90, fontsize=8)
    ax.set_yticks(range(n_q), maps.query_tokens, fontsize=8)
    wanted = target.lower().removeprefix("##") if target else None
    for j, label in enumerate(ax.get_xticklabels()):
        if j == column:
            label.set_color(MARK)
            label.set_fontweight("bold")
        elif wanted is not None and maps.key_tokens[j].lower().removeprefix("##") == wanted:
            label.set_color(TARGET)
            label.set_fontweight("bold")
    ax.get_yticklabels()[row].set_color(MARK)
    ax.get_yticklabels()[row].set_fontweight("bold")
    ax.set_title(f"layer {rank.layer}, head {rank.head}: {maps.query_tokens[row]} -> {word} {weight:.2f}",
                 fontsize=10)


def plot_focus(sentences: list[AttentionMaps], token: str, ranks: list[HeadRank], out_png: str | Path,
               heads: int = 3, targets: tuple[str, ...] | list[str] | None = None, notes: list[str] | None = None,
               dpi: int = 100) -> Path:
    """Draw ``focus_figure`` into a PNG file and return its path."""
    fig = focus_figure(sentences, token, ranks, heads, targets, notes)
    out_png = Path(out_png)
    fig.savefig(out_png, dpi=dpi)
    plt.close(fig)
    return out_png


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("s" if n != 1 else "")
