import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pytest

from tformer.nn.positional import sinusoidal_positional_encoding
from tformer.viz.positions import plot_positions, positions_figure


def test_the_figure_draws_the_table_and_the_dot_products_of_positions():
    fig = positions_figure(d_model=24, max_len=37)
    ax_table, ax_sim = [ax for ax in fig.axes if ax.images and ax.get_title()]
    table = sinusoidal_positional_encoding(37, 24).numpy()
    np.testing.assert_allclose(ax_table.images[0].get_array().data, table)
    similarity = ax_sim.images[0].get_array().data
    np.testing.assert_allclose(similarity, table @ table.T, rtol=1e-5, atol=1e-5)
    # sum_i cos((p - q) w_i): largest (d_model / 2) on the diagonal and a function of p - q only
    np.testing.assert_allclose(np.diag(similarity), 12.0, rtol=1e-5)
    np.testing.assert_allclose(similarity[1:, 1:], similarity[:-1, :-1], atol=1e-4)
    assert (similarity <= 12.0 + 1e-4).all()
    assert ax_table.get_xlabel() and ax_table.get_ylabel() == "position pos"
    assert (ax_sim.get_xlabel(), ax_sim.get_ylabel()) == ("position q", "position p")
    assert fig._suptitle.get_text() == "Sinusoidal positional encoding (d_model=24, positions 0 to 36)"
    plt.close(fig)


def test_png_has_the_expected_size_and_is_not_blank(tmp_path):
    out = plot_positions(tmp_path / "pe.png", d_model=64, max_len=50, dpi=50)
    pixels = matplotlib.image.imread(out)
    assert pixels.shape[:2] == (round(5.5 * 50), 13 * 50)
    rgb = pixels[..., :3].reshape(-1, 3)
    assert rgb.std() > 0.1 and len(np.unique(rgb, axis=0)) > 100


def test_sizes_that_cannot_be_drawn_are_refused():
    with pytest.raises(ValueError, match="between 1 and 4096 to draw, got d_model=512, max_len=100000"):
        positions_figure(512, 100000)
