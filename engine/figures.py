"""Writing matplotlib figures: laid out, written atomically (format from the suffix), closed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.atomic import atomic_path


def save_figure(fig: Any, path: Path | str) -> None:
    """Tight layout, write `fig` to `path` atomically and free it."""
    import matplotlib.pyplot as plt  # callers chose the backend already

    fig.tight_layout()
    with atomic_path(path) as partial:
        fig.savefig(partial)
    plt.close(fig)
