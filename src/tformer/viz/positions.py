"""The paper's sinusoidal positional encodings, drawn: the table itself and how similar positions are to each other.

The dot product PE(p)·PE(q) = sum_i cos((p - q)·w_i) depends only on the distance p - q, is largest on the
diagonal (d_model / 2 for even d_model) and falls off with distance: nearby positions look alike.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import Tensor  # noqa: E402

from tformer.nn.positional import sinusoidal_positional_encoding  # noqa: E402

MAX_DRAWN = 4096  # more rows or columns than pixels only blurs the picture


def position_similarity(table: Tensor) -> Tensor:
    """(max_len, d_model) -> (max_len, max_len) dot products between positions' encodings."""
    return table @ table.T


def positions_figure(d_model: int = 512, max_len: int = 100) -> Figure:
    """Two panels: the encoding table (positions by dimensions) and the positions' dot-product similarity."""
    if not 0 < max_len <= MAX_DRAWN or not 0 < d_model <= MAX_DRAWN:
        raise ValueError(f"d_model and max_len must be between 1 and {MAX_DRAWN} to draw, got d_model={d_model}, "
                         f"max_len={max_len}")
    table = sinusoidal_positional_encoding(max_len, d_model)  # (max_len, d_model)
    similarity = position_similarity(table)  # (max_len, max_len)
    fig, (ax_table, ax_sim) = plt.subplots(1, 2, figsize=(13, 5.5), layout="constrained")
    image = ax_table.imshow(table.numpy(), cmap="RdBu_r", vmin=-1.0, vmax=1.0, aspect="auto", interpolation="nearest")
    ax_table.set(title="Encoding table: PE(pos, 2i) = sin, PE(pos, 2i+1) = cos",
                 xlabel="dimension (even: sine, odd: cosine)", ylabel="position pos")
    fig.colorbar(image, ax=ax_table, label="value")
    image = ax_sim.imshow(similarity.numpy(), cmap="viridis", aspect="equal", interpolation="nearest")
    ax_sim.set(title="Similarity of positions: PE(p) · PE(q)", xlabel="position q", ylabel="position p")
    fig.colorbar(image, ax=ax_sim, label="dot product")
    fig.suptitle(f"Sinusoidal positional encoding (d_model={d_model}, positions 0 to {max_len - 1})")
    return fig


def plot_positions(out_png: str | Path, d_model: int = 512, max_len: int = 100, dpi: int = 100) -> Path:
    """Draw ``positions_figure`` into a PNG file and return its path."""
    fig = positions_figure(d_model, max_len)
    out_png = Path(out_png)
    fig.savefig(out_png, dpi=dpi)
    plt.close(fig)
    return out_png
