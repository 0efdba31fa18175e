"""The library's own result files: ``cameras.csv`` (the catalogue), ``search.csv`` (each photo's top cameras) and
``reverse.csv`` (one camera's photos), with the transform the geometry search found and the false-alarm
probability of each peak."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from sci_lightning.fingerprint.significance import photo_log10_pfa
from sci_lightning.forensic import false_alarm
from sci_lightning.forensic.pce import p_match as platt_p_match

GEOMETRY_COLUMNS = ("transform", "rotation", "mirror", "scale", "offset_y", "offset_x")


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


def _p_match(pce: float, lp: float | None, cal: dict[str, Any] | None) -> tuple[str, str]:
    """``(P(match), log10 P_FA)`` cells of one peak under the library's rule (empty where it has none)."""
    if cal is not None and cal.get("method") == "false_alarm" and lp is not None:
        return f"{false_alarm.p_match(lp, cal['log10_bar'], cal['slope']):.4g}", f"{lp:.2f}"
    prob = platt_p_match(pce, cal)
    return ("" if prob is None else f"{prob:.4g}"), ""


def write_search_csv(
    file: Path,
    paths: list[str],
    scored: list[dict[str, Any]],
    decision_of: dict[str, str],
    devices: dict[str, str],
    cal: dict[str, Any] | None,
    top_k: int,
) -> None:
    """One row per photo and ranked camera (best ``top_k``): PCE, NCC, P(match), the false-alarm probability among
    the photo's hypotheses, the transform found, and the index score."""
    with file.open("w", newline="") as fh:
        wr = csv.writer(fh)
        head = ["path", "decision", "rank", "camera", "device", "pce", "ncc", "p_match", "log10_p_false_alarm"]
        wr.writerow([*head, "hypotheses", *GEOMETRY_COLUMNS, "index_z"])
        for path, s in zip(paths, scored):
            lps = photo_log10_pfa(s) if "geometry" in s else {}
            ranked = sorted(s.get("scores", {}).items(), key=lambda kv: (lps.get(kv[0], 0.0), -kv[1][0]))[:top_k]
            n = s.get("hypotheses", "")
            for rank, (cam, (pce_value, ncc_value)) in enumerate(ranked, 1):
                prob, lp = _p_match(pce_value, lps.get(cam), cal)
                g = s.get("geometry", {}).get(cam, {})
                z = s["z"].get(cam)
                wr.writerow(
                    [
                        path,
                        decision_of.get(path, "skipped"),
                        rank,
                        cam,
                        devices.get(cam, ""),
                        f"{pce_value:.4g}",
                        f"{ncc_value:.4g}",
                        prob,
                        lp,
                        n,
                        *[g.get(k, "") for k in GEOMETRY_COLUMNS],
                        "" if z is None else f"{z:.2f}",
                    ]
                )


def write_reverse_csv(file: Path, rows: list[dict[str, Any]], cal: dict[str, Any] | None) -> None:
    """One row per photo of a reverse search (decided by :func:`~sci_lightning.library.search.reverse_decisions`)."""
    with file.open("w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(
            ["path", "decision", "pce", "p_match", "log10_p_false_alarm", "hypotheses", *GEOMETRY_COLUMNS, "index_z"]
        )
        for r in rows:
            pce_value, lp = r["pce"], r.get("log10_p_false_alarm")
            if pce_value is None:
                prob = ""
            elif lp is not None:
                prob = f"{false_alarm.p_match(lp, cal['log10_bar'], cal['slope']):.4g}"
            else:
                p = platt_p_match(pce_value, cal)
                prob = "" if p is None else f"{p:.4g}"
            wr.writerow(
                [
                    r["path"],
                    r["decision"],
                    "" if pce_value is None else f"{pce_value:.4g}",
                    prob,
                    "" if lp is None else f"{lp:.2f}",
                    r.get("hypotheses", ""),
                    *[r.get(k, "") for k in GEOMETRY_COLUMNS],
                    "" if r["z"] is None else f"{r['z']:.2f}",
                ]
            )
