"""Turning measurements into the printed table, the JSON record, the chart and the table in docs/benchmarks.md."""

from __future__ import annotations

import json
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import SideResult

DOC_START, DOC_END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"


@dataclass
class Ratio:
    """How many times faster side ``a`` is than side ``b`` on one case (>1: ``a`` is faster)."""

    case: str
    a: str
    b: str
    value: float
    target: float | None = None  # the minimum for this ratio ("within 1.5x of B" is a minimum of 1/1.5)

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.value >= self.target

    def to_dict(self) -> dict:
        return dict(case=self.case, a=self.a, b=self.b, ratio=self.value, target=self.target, met=self.met)


def speedup(results: dict[str, SideResult], a: str, b: str) -> float:
    """Median time of ``b`` over median time of ``a`` for the same work."""
    return results[b].median_seconds / results[a].median_seconds


def machine() -> dict:
    import torch

    info = dict(
        cpu=_cpu_model(), logical_cpus=os.cpu_count(), python=platform.python_version(), torch=torch.__version__,
        platform=platform.platform(), load_average_at_start=list(os.getloadavg()),
    )
    for package in ("transformers", "ctranslate2"):
        try:
            info[package] = __import__(package).__version__
        except ImportError:
            info[package] = None
    return info


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else platform.processor() or "unknown"


def side_rows(cases: list[dict]) -> list[list[str]]:
    """One row per (case, side): median seconds, throughput, extras, peak memory."""
    rows = []
    for case in cases:
        for name, side in case["sides"].items():
            extra = side["extra"]
            detail = []
            if "ms_per_token" in extra:
                detail.append(f"{extra['ms_per_token']:.2f} ms/token")
            if "same_as_tformer" in extra and name != "tformer":
                detail.append(f"{100 * extra['same_as_tformer']:.0f}% same as tformer")
            if "same_as_float32" in extra and name not in ("tformer", "ct2-float32"):
                detail.append(f"{100 * extra['same_as_float32']:.0f}% same as its float32")
            if "bleu" in extra:
                detail.append(f"BLEU {extra['bleu']:.1f}")
            if "bandwidth_share" in extra:
                detail.append(f"{100 * extra['bandwidth_share']:.0f}% of bandwidth ceiling")
            if "same_greedy_answer_as_float32" in extra:
                detail.append(f"{100 * extra['same_greedy_answer_as_float32']:.0f}% same greedy answer as float32")
            rows.append([case["name"], name, f"{side['median_seconds'] * 1000:.1f}",
                         f"{side['throughput']:.1f} {side['unit']}/s", "; ".join(detail),
                         "" if side["peak_rss_mb"] is None else
                         f"{side['peak_rss_mb']:.0f} (+{side['rss_growth_mb']:.0f})"])
    return rows


SIDE_HEADER = ["case", "side", "median ms", "throughput", "details", "peak RSS MiB (+growth)"]
RATIO_HEADER = ["case", "comparison", "ratio", "target", "met"]


def ratio_rows(ratios: list[dict]) -> list[list[str]]:
    rows = []
    for r in ratios:
        target = "" if r["target"] is None else (f">= {r['target']:.2f}x")
        met = "" if r["met"] is None else ("yes" if r["met"] else "no")
        rows.append([r["case"], f"{r['a']} vs {r['b']}", f"{r['ratio']:.2f}x", target, met])
    return rows


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(record: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"bench-{record['started'].replace(':', '').replace('-', '')[:15]}.json"
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return path


def write_chart(ratios: list[dict], path: Path) -> None:
    """Horizontal bars of every ratio (log scale), with each target marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['case']}\n{r['a']} vs {r['b']}" for r in ratios]
    values = [r["ratio"] for r in ratios]
    colors = ["#999999" if r["met"] is None else ("#2a9d8f" if r["met"] else "#e76f51") for r in ratios]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(ratios) + 1.2))
    y = range(len(ratios))
    ax.barh(list(y), values, color=colors)
    for i, r in enumerate(ratios):
        if r["target"] is not None:
            ax.plot([r["target"]] * 2, [i - 0.4, i + 0.4], color="black", linewidth=1.5)
        ax.text(values[i], i, f" {values[i]:.2f}x", va="center", fontsize=8)
    ax.axvline(1.0, color="#444444", linewidth=0.8, linestyle="--")
    ax.set_xscale("log")
    ax.set_yticks(list(y))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("speed ratio (first side's speed / second side's; >1 = first is faster); black tick: target")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def update_docs(record: dict, doc: Path, json_path: Path, chart: Path) -> None:
    """Replace the generated block of ``doc`` (between the markers) with this run's tables."""
    m = record["machine"]
    block = "\n".join([
        DOC_START,
        f"Run of {record['started']} (`{record['command']}`), results in `{_relative(json_path, doc)}`.",
        "",
        f"Machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, {record['settings']['threads']} threads used; "
        f"Python {m['python']}, torch {m['torch']}, transformers {m['transformers']}, "
        f"ctranslate2 {m['ctranslate2']}; load average at start {m['load_average_at_start'][0]:.1f}.",
        f"Settings: {json.dumps(record['settings'], sort_keys=True)}",
        "",
        "### Ratios",
        "",
        markdown_table(RATIO_HEADER, ratio_rows(record["ratios"])),
        "",
        f"![speed ratios]({_relative(chart, doc)})",
        "",
        "### Every side",
        "",
        markdown_table(SIDE_HEADER, side_rows(record["cases"])),
        DOC_END,
    ])
    text = doc.read_text(encoding="utf-8") if doc.is_file() else f"# Benchmarks\n\n{DOC_START}\n{DOC_END}\n"
    if DOC_START not in text or DOC_END not in text:
        text = text.rstrip("\n") + f"\n\n{DOC_START}\n{DOC_END}\n"
    before, rest = text.split(DOC_START, 1)
    after = rest.split(DOC_END, 1)[1]
    doc.write_text(before + block + after, encoding="utf-8")


def _relative(path: Path, doc: Path) -> str:
    return os.path.relpath(path.resolve(), doc.resolve().parent)
