"""Training curves: loss (train and validation) and validation BLEU against updates."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

from tformer.errors import DataError

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_metrics(path: str | Path) -> list[dict]:
    """The rows of a ``metrics.jsonl``. A torn last line (read while the run writes it, or left by a kill) is left
    out; a bad line elsewhere is an error naming the file and line."""
    lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            if number < len(lines):
                raise DataError(f"{path}:{number}: not a JSON row ({err.msg})") from None
    return rows


def plot_training_curves(metrics_path: str | Path, out_png: str | Path) -> Path:
    """Two panels from ``metrics.jsonl``: losses, and validation BLEU."""
    rows = read_metrics(metrics_path)
    train = [r for r in rows if r.get("kind") == "train"]
    evals = [r for r in rows if r.get("kind") == "eval"]
    fig, (ax_loss, ax_bleu) = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train], label="train (label-smoothed)", alpha=0.7)
    if evals:
        ax_loss.plot([r["step"] for r in evals], [r["val_loss"] for r in evals], "o-", label="validation")
        ax_bleu.plot([r["step"] for r in evals], [r["val_bleu"] for r in evals], "o-", color="tab:green")
    ax_loss.set(title="Loss per target token", xlabel="update", ylabel="cross-entropy (nats)")
    ax_loss.legend()
    ax_bleu.set(title="Validation sacreBLEU (greedy)", xlabel="update", ylabel="BLEU")
    for ax in (ax_loss, ax_bleu):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out_png = Path(out_png)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def plot_loss_curves(metrics_path: str | Path, out_png: str | Path, unit: str = "nats per token") -> Path:
    """One panel from ``metrics.jsonl``: training and validation loss against updates (language models)."""
    rows = read_metrics(metrics_path)
    train = [r for r in rows if r.get("kind") == "train"]
    evals = [r for r in rows if r.get("kind") == "eval"]
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train", alpha=0.7)
    if evals:
        ax.plot([r["step"] for r in evals], [r["val_loss"] for r in evals], "o-", label="validation")
    ax.set(title="Cross-entropy", xlabel="update", ylabel=unit)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return Path(out_png)
