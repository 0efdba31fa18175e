"""How a clustering compares with the truth, when it is known: adjusted Rand index, pair precision and recall, the
number of clusters against the number of cameras. A photo left alone counts as a cluster of its own."""

from __future__ import annotations

import csv
from pathlib import Path

from sklearn.metrics import adjusted_rand_score
from sklearn.metrics.cluster import pair_confusion_matrix

from sci_lightning.clustering.outcome import Clustering
from sci_lightning.errors import SCIConfigError


def truth_of(spec: str, images: str, paths: list[str]) -> dict[str, str]:
    """``path -> camera``: ``parent`` (each photo's folder names its camera) or a CSV with ``path,camera`` columns
    (paths absolute or relative to ``images``)."""
    if spec == "parent":
        return {p: Path(p).parent.name for p in paths}
    file = Path(spec).expanduser()
    if not file.is_file():
        raise SCIConfigError("cluster.truth", f"{file} does not exist", "use parent or a CSV with path,camera")
    root = Path(images).expanduser().resolve()
    with file.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"path", "camera"} <= set(rows[0]):
        raise SCIConfigError("cluster.truth", f"{file} has no path,camera columns", "write a header: path,camera")
    known = {}
    for r in rows:
        p = Path(r["path"]).expanduser()
        known[str((p if p.is_absolute() else root / p).resolve())] = r["camera"]
    return {p: known[str(Path(p).resolve())] for p in paths if str(Path(p).resolve()) in known}


def scores_against(result: Clustering, spec: str, images: str) -> dict[str, float]:
    """``cluster/ari``, ``cluster/pair_precision``, ``cluster/pair_recall``, ``cluster/n_cameras`` (true) and
    ``cluster/n_clusters`` (found, lone photos not counted) over the photos whose camera is known."""
    truth = truth_of(spec, images, [r.path for r in result.rows])
    rows = [r for r in result.rows if r.path in truth]
    if not rows:
        raise SCIConfigError("cluster.truth", "names the camera of none of the photos", "check its paths")
    found = [r.cluster if r.cluster is not None else f"alone:{r.path}" for r in rows]
    true = [truth[r.path] for r in rows]
    pairs = pair_confusion_matrix(true, found)  # ordered pairs, from the contingency table (not n^2 loops)
    both, same_found, same_true = pairs[1, 1], pairs[1, 1] + pairs[0, 1], pairs[1, 1] + pairs[1, 0]
    return {
        "cluster/ari": float(adjusted_rand_score(true, found)),
        "cluster/pair_precision": float(both / same_found) if same_found else 1.0,
        "cluster/pair_recall": float(both / same_true) if same_true else 1.0,
        "cluster/n_cameras": float(len(set(true))),
        "cluster/n_clusters": float(result.n_clusters),
        "cluster/n_scored": float(len(rows)),
    }
