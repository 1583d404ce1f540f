"""Attention plots (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_attention(maps: Sequence[np.ndarray], labels: Sequence[str], path: str | Path, title: str = "") -> Path:
    """One panel per decoder layer: cross-attention (U tokens x T' encoder frames)."""
    n = len(maps)
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 3), squeeze=False)
    for i, (ax, attn) in enumerate(zip(axes[0], maps)):
        ax.imshow(attn, aspect="auto", origin="lower", interpolation="nearest", cmap="viridis")
        ax.set_title(f"layer {i}")
        ax.set_xlabel("encoder frame")
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels, fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
