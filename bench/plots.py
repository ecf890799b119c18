"""PNG plots of benchmark results (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # the backend must be chosen first
import numpy as np

from engine.figures import save_figure


def plot_latency_cdf(series_s: dict[str, np.ndarray], path: Path, title: str) -> Path:
    """Empirical CDF of each latency series (ms, log x axis) with p50/p99 marked."""
    fig, ax = plt.subplots(figsize=(7, 4), dpi=90)
    for label, seconds in series_s.items():
        ms = np.sort(np.asarray(seconds, dtype=np.float64) * 1e3)
        if ms.size == 0:
            continue
        frac = np.arange(1, ms.size + 1) / ms.size
        (line,) = ax.step(ms, frac, where="post", label=f"{label} (n={ms.size})")
        for q in (50, 99):
            ax.plot(np.percentile(ms, q), q / 100, "o", color=line.get_color(), markersize=4)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale); dots at p50 and p99")
    ax.set_ylabel("fraction of frames")
    ax.set_ylim(0, 1.01)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower right")
    save_figure(fig, path)
    return path


def plot_memory(series: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str, x_label: str) -> Path:
    """Resident memory (MiB) against time or frames, one line per series."""
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=90)
    for label, (x, rss) in series.items():
        ax.plot(x, rss, label=label, linewidth=1)
    ax.set_xlabel(x_label)
    ax.set_ylabel("RSS (MiB)")
    ax.grid(True, alpha=0.3)
    ax.set_title(title)
    ax.legend(fontsize=7)
    save_figure(fig, path)
    return path
