"""Verdicts on questioned photos: ranked candidate cameras, a decision ("unknown" allowed), heat maps, report.md.

Method-agnostic: the CNN passes calibrated class probabilities and per-patch probabilities, the PRNU baseline
passes PCE scores, calibrated match probabilities and a block map of local correlation with its best camera.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402
from PIL import Image  # noqa: E402

log = logging.getLogger(__name__)

UNKNOWN = "unknown"
THUMB = 640


def decide(ranked: Sequence[tuple[str, float]], threshold: float | None) -> str:
    """The top candidate if its score reaches ``threshold`` (None: always), else "unknown"."""
    top, score = ranked[0]
    return top if threshold is None or score >= threshold else UNKNOWN


def _thumbnail(path: str, size: int = THUMB) -> tuple[np.ndarray, float]:
    """A display-only thumbnail (JPEG draft decoding is fine here) and its scale w.r.t. the stored image."""
    with Image.open(path) as img:
        full_w = img.width
        img.draft("RGB", (size, size))
        img = img.convert("RGB")
        img.thumbnail((size, size))
        return np.asarray(img), img.width / full_w


def class_colours(classes: Sequence[str]) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    return {c: cmap(i % cmap.N) for i, c in enumerate(classes)}


def _two_panels(thumb: np.ndarray, title: str):
    """The photo as stored (left) and the same photo under the evidence overlay (right)."""
    aspect = thumb.shape[0] / thumb.shape[1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5.5 * aspect + 1.0), dpi=100)
    for ax in (left, right):
        ax.imshow(thumb)
        ax.axis("off")
    left.set_title("questioned photo", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig, right


def draw_patch_heatmap(path: str, positions: np.ndarray, patch_probs: np.ndarray, size: int,
                       classes: Sequence[str], out: Path, title: str) -> Path:
    """The photo beside itself with every analysed patch coloured by the camera it points to (opacity =
    that camera's probability for the patch)."""
    thumb, scale = _thumbnail(path)
    colours = class_colours(classes)
    fig, ax = _two_panels(thumb, title)
    pred, conf = patch_probs.argmax(1), patch_probs.max(1)
    for (y, x), k, p in zip(positions, pred, conf):
        ax.add_patch(Rectangle((x * scale, y * scale), size * scale, size * scale, lw=0.3, edgecolor="white",
                               facecolor=colours[classes[k]], alpha=0.1 + 0.6 * float(p)))
    votes = np.bincount(pred, minlength=len(classes))
    handles = [Patch(color=colours[c], label=f"{c}: {v} patches") for c, v in zip(classes, votes) if v]
    ax.legend(handles=handles, fontsize=7, loc="lower right", framealpha=0.8)
    ax.set_title("patch votes (colour = camera, opacity = probability)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def draw_block_heatmap(path: str, block_map: np.ndarray, block: int, origin: tuple[int, int], out: Path,
                       title: str, label: str) -> Path:
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
    plt.close(fig)
    return out


def _slug(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path).stem)[:60]


def write_verdicts(out_dir: Path, verdicts: list[dict[str, Any]], header: list[str],
                   heatmap: Callable[[dict[str, Any], Path], Path] | None, max_heatmaps: int = 200,
                   score_name: str = "probability") -> dict[str, Any]:
    """``verdicts.csv``, one heat-map PNG per image (up to ``max_heatmaps``) and ``report.md``.

    Each verdict holds ``path``, ``ranked`` [(camera, score)...], ``decision`` and optionally ``true`` (the
    camera, or "unknown" for a camera without references) and ``detail`` (extra text). Returns open-set
    metrics when true cameras are known.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    folder = out_dir / "verdicts"
    folder.mkdir(exist_ok=True)
    k = max((len(v["ranked"]) for v in verdicts), default=0)
    with (out_dir / "verdicts.csv").open("w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["path", "decision", "true", *[f"{s}{i + 1}" for i in range(k) for s in ("camera", "score")]])
        for v in verdicts:
            cells = [x for cam, score in v["ranked"] for x in (cam, f"{score:.4g}")]
            wr.writerow([v["path"], v["decision"], v.get("true", ""), *cells])
    lines = ["# Verdict report", "", *header, "", "| # | image | decision | candidates (" + score_name + ") | true |",
             "|---|---|---|---|---|"]
    for i, v in enumerate(verdicts):
        cands = ", ".join(f"{c} {s:.3g}" for c, s in v["ranked"][:3])
        decision = f"**{v['decision']}**"
        lines.append(f"| {i + 1} | `{Path(v['path']).name}` | {decision} | {cands} | {v.get('true', '—')} |")
    lines.append("")
    for i, v in enumerate(verdicts):
        lines += [f"## {i + 1}. `{Path(v['path']).name}` → **{v['decision']}**", "", f"`{v['path']}`", ""]
        lines += [f"- {c}: {s:.4g}" for c, s in v["ranked"]]
        if v.get("detail"):
            lines += ["", v["detail"]]
        if heatmap is not None and i < max_heatmaps:
            png = folder / f"{i + 1:04d}_{_slug(v['path'])}.png"
            try:
                heatmap(v, png)
                lines += ["", f"![heat map of {Path(v['path']).name}](verdicts/{png.name})"]
            except Exception as err:  # a figure must never cost the verdicts: say why it is missing
                log.warning("no heat map for %s: %s", v["path"], err)
        lines.append("")
    if len(verdicts) > max_heatmaps:
        lines.append(f"(heat maps drawn for the first {max_heatmaps} of {len(verdicts)} images: "
                     "raise verdict.max_heatmaps for more)")
    (out_dir / "report.md").write_text("\n".join(lines) + "\n")
    return open_set_metrics(verdicts)


def open_set_metrics(verdicts: list[dict[str, Any]]) -> dict[str, Any]:
    """Attribution rates over verdicts whose true camera is known (``true``; "unknown" = no references)."""
    known = [v for v in verdicts if v.get("true") not in (None, "", UNKNOWN)]
    unknown = [v for v in verdicts if v.get("true") == UNKNOWN]
    out: dict[str, Any] = {"n_known_camera_images": len(known), "n_unknown_camera_images": len(unknown)}
    if known:
        out["open/correct_attribution_known"] = float(np.mean([v["decision"] == v["true"] for v in known]))
        out["open/wrong_attribution_known"] = float(np.mean([v["decision"] not in (v["true"], UNKNOWN)
                                                            for v in known]))
        out["open/unknown_rate_known"] = float(np.mean([v["decision"] == UNKNOWN for v in known]))
    if unknown:
        out["open/unknown_rate_unknown"] = float(np.mean([v["decision"] == UNKNOWN for v in unknown]))
        out["open/false_attribution_unknown"] = 1.0 - out["open/unknown_rate_unknown"]
    return out
