"""The library's own result files: ``cameras.csv`` (the catalogue), ``search.csv`` (each photo's top cameras) and
``reverse.csv`` (one camera's photos), with the transform the geometry search found and the false-alarm
probability of each peak."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sci_lightning.library.results import GEOMETRY_COLUMNS, PhotoVerdict, ReverseRow

CAMERA_FIELDS = ("name", "device", "height", "width", "n_photos", "enrolled_at", "indexed", "source")
QUALITY_FIELDS = ("scene_leak", "quality_level", "quality_warnings")


def quality_cells(row: dict[str, Any]) -> list[str]:
    """A camera's fingerprint quality as catalogue cells (empty for a camera enrolled before it was measured)."""
    q = row.get("quality") or {}
    if not q:
        return ["", "not measured (enrolled before quality was kept: re-enrol to measure it)", ""]
    return [f"{q['scene_leak']:.2f}", q["level"], "; ".join(q.get("warnings", []))]


def print_cameras(rows: list[dict[str, Any]], file: Path) -> None:
    """The catalogue rows: written to ``file`` (every field, the fingerprint's quality too) and printed as a
    table, with the fingerprints to be wary of flagged."""
    with file.open("w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow([*CAMERA_FIELDS, *QUALITY_FIELDS])
        wr.writerows([[r[f] for f in CAMERA_FIELDS] + quality_cells(r) for r in rows])
    print(f"{'name':<24} {'device':<24} {'size':>11} {'photos':>6} {'leak':>5}  {'quality':<21} enrolled")
    for r in rows:
        size = f"{r['width']}x{r['height']}"
        leak, level, warnings = quality_cells(r)
        flag = " !" if warnings else ""
        print(
            f"{r['name']:<24} {r['device']:<24} {size:>11} {r['n_photos']:>6} {leak:>5}  {level[:20] + flag:<21} "
            f"{r['enrolled_at']}"
        )
    warned = [r for r in rows if quality_cells(r)[2]]
    if warned:
        print(f"! {len(warned)} fingerprint(s) to be wary of (action=show library.camera=NAME says why)")


def write_search_csv(file: Path, photos: Sequence[PhotoVerdict]) -> None:
    """One row per photo and ranked camera: PCE, NCC, P(match), the false-alarm probability among the photo's
    hypotheses, the transform found, and the index score."""
    head = ["path", "decision", "rank", "camera", "device", "pce", "ncc", "p_match", "log10_p_false_alarm"]
    columns = [*head, "hypotheses", *GEOMETRY_COLUMNS, "index_z"]
    with file.open("w", newline="") as fh:
        wr = csv.DictWriter(fh, columns)
        wr.writeheader()
        for photo in photos:
            for c in photo.candidates:
                wr.writerow({"path": photo.path, "decision": photo.decision, **c.cells()})


def write_reverse_csv(file: Path, rows: Sequence[ReverseRow]) -> None:
    """One row per photo of a reverse search."""
    columns = ["path", "decision", "pce", "p_match", "log10_p_false_alarm", "hypotheses", *GEOMETRY_COLUMNS, "index_z"]
    with file.open("w", newline="") as fh:
        wr = csv.DictWriter(fh, columns)
        wr.writeheader()
        wr.writerows(r.cells() for r in rows)
