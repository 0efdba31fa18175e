"""Forensic figures: reliability diagrams and heat maps of where in a photo the evidence lies.

Drawn with matplotlib's object API (:class:`~matplotlib.figure.Figure`): no pyplot state, no backend switch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from PIL import Image

THUMB = 640


def _thumbnail(path: str, size: int = THUMB) -> tuple[np.ndarray, float]:
    """A display-only thumbnail (JPEG draft decoding is fine here) and its scale w.r.t. the stored image."""
    with Image.open(path) as img:
        full_w = img.width
        img.draft("RGB", (size, size))
        img = img.convert("RGB")
        img.thumbnail((size, size))
        return np.asarray(img), img.width / full_w


def class_colours(classes: Sequence[str]) -> dict[str, tuple[float, float, float, float]]:
    cmap = matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20"]
    return {c: cmap(i % cmap.N) for i, c in enumerate(classes)}


def _two_panels(thumb: np.ndarray, title: str):
    """The photo as stored (left) and the same photo under the evidence overlay (right)."""
    aspect = thumb.shape[0] / thumb.shape[1]
    fig = Figure(figsize=(11, 5.5 * aspect + 1.0), dpi=100)
    left, right = fig.subplots(1, 2)
    for ax in (left, right):
        ax.imshow(thumb)
        ax.axis("off")
    left.set_title("questioned photo", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig, right


def draw_patch_heatmap(
    path: str, positions: np.ndarray, patch_probs: np.ndarray, size: int, classes: Sequence[str], out: Path, title: str
) -> Path:
    """The photo beside itself with every analysed patch coloured by the camera it points to (opacity =
    that camera's probability for the patch)."""
    thumb, scale = _thumbnail(path)
    colours = class_colours(classes)
    fig, ax = _two_panels(thumb, title)
    pred, conf = patch_probs.argmax(1), patch_probs.max(1)
    for (y, x), k, p in zip(positions, pred, conf):
        ax.add_patch(
            Rectangle(
                (x * scale, y * scale),
                size * scale,
                size * scale,
                lw=0.3,
                edgecolor="white",
                facecolor=colours[classes[k]],
                alpha=0.1 + 0.6 * float(p),
            )
        )
    votes = np.bincount(pred, minlength=len(classes))
    handles = [Patch(color=colours[c], label=f"{c}: {v} patches") for c, v in zip(classes, votes) if v]
    ax.legend(handles=handles, fontsize=7, loc="lower right", framealpha=0.8)
    ax.set_title("patch votes (colour = camera, opacity = probability)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out)
    return out


def draw_block_heatmap(
    path: str, block_map: np.ndarray, block: int, origin: tuple[int, int], out: Path, title: str, label: str
) -> Path:
    """The photo beside itself under a per-block score map (e.g. local PRNU correlation with a fingerprint)."""
    thumb, scale = _thumbnail(path)
    fig, ax = _two_panels(thumb, title)
    h, w = block_map.shape
    y0, x0 = origin
    extent = (x0 * scale, (x0 + w * block) * scale, (y0 + h * block) * scale, y0 * scale)
    # A fixed lower end at 0 (no correlation): an auto-scaled colour bar would paint noise as contrast.
    vmax = max(0.05, float(np.nanmax(block_map)))
    im = ax.imshow(block_map, cmap="magma", alpha=0.6, extent=extent, interpolation="nearest", vmin=0, vmax=vmax)
    fig.colorbar(im, ax=ax, fraction=0.035, pad=0.01, label=label)
    ax.set_xlim(0, thumb.shape[1])
    ax.set_ylim(thumb.shape[0], 0)
    ax.set_title(label, fontsize=9)
    fig.tight_layout()
    fig.savefig(out)
    return out


def _square():
    fig = Figure(figsize=(4.6, 4.2), dpi=110)
    return fig, fig.subplots()


def _save_square(fig, ax, path: Path, title: str, xlabel: str, ylabel: str, legend_loc: str) -> Path:
    """The finish the rate plots share: y in [0, 1], labels, title, legend, grid, saved to ``path``."""
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc=legend_loc)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_reliability(
    curves: Sequence[tuple[str, list[dict[str, float]]]], path: Path, title: str, xlabel: str = "top-1 score"
) -> Path:
    """Reliability diagram: accuracy per confidence bin (marker size ~ count) against the diagonal."""
    fig, ax = _square()
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect calibration")
    for name, bins in curves:
        if bins:
            x = [b["confidence"] for b in bins]
            y = [b["accuracy"] for b in bins]
            n = np.array([b["count"] for b in bins], dtype=float)
            ax.plot(x, y, marker="o", lw=1.2, label=name)
            ax.scatter(x, y, s=20 + 200 * n / n.max(), alpha=0.3)
    ax.set_xlim(0, 1.02)
    return _save_square(fig, ax, path, title, xlabel, "fraction correct", "upper left")


def plot_roc(fpr: Sequence[float], tpr: Sequence[float], path: Path, title: str, fpr_target: float = 0.01) -> Path:
    """ROC curve on a log false-match axis (the low-FPR end is what forensic use needs), the target FPR marked."""
    fig, ax = _square()
    fpr_arr = np.clip(np.asarray(fpr, dtype=float), 1e-4, 1)
    ax.plot(fpr_arr, tpr, lw=1.5)
    ax.axvline(fpr_target, color="0.5", ls="--", lw=1, label=f"FPR = {fpr_target:g}")
    ax.set_xscale("log")
    ax.set_xlim(1e-4, 1)
    xlabel = "false-match rate (non-matching pairs accepted)"
    return _save_square(fig, ax, path, title, xlabel, "true-match rate", "lower right")
