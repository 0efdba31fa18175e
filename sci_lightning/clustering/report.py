"""The clustering's files, one writer each: ``clusters.csv`` (``path,cluster,size_px,n_in_cluster,links,confidence``),
``pairs.csv`` (every pair compared: ``a,b,pce,geometry,log10_p_false_alarm``), ``left_alone.csv`` (``path,reason``),
``metrics.json`` and ``cluster_report.html`` (self-contained: thumbnails and the similarity picture inline)."""

from __future__ import annotations

import base64
import csv
import io
import math
import os
import uuid
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from jinja2 import Environment, PackageLoader, select_autoescape  # noqa: E402

from sci_lightning.clustering.outcome import Clustering  # noqa: E402
from sci_lightning.clustering.pairs import in_threads  # noqa: E402
from sci_lightning.data.images import opened  # noqa: E402
from sci_lightning.errors import SCIConfigError  # noqa: E402
from sci_lightning.fingerprint.significance import sci  # noqa: E402
from sci_lightning.outputs import Metrics, write_json  # noqa: E402

CLUSTER_COLUMNS = ("path", "cluster", "size_px", "n_in_cluster", "links", "confidence")
PAIR_COLUMNS = ("a", "b", "pce", "geometry", "log10_p_false_alarm")
THUMB = 112  # px: the report's thumbnails


def _atomic_csv(path: Path, header: tuple[str, ...], rows) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    with tmp.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    os.replace(tmp, path)


def metrics_of(result: Clustering, scores: dict[str, float]) -> Metrics:
    """What ``metrics.json`` holds: counts, the bar, the null and the scores against the truth."""
    return {
        "n_photos": result.n_photos,
        "n_clusters": result.n_clusters,
        "n_alone": result.n_alone,
        "n_unusable": len(result.left),
        "n_pairs": len(result.pairs),
        "n_linked": len(result.linked),
        "hypotheses": result.hypotheses,
        "bar_pce": result.bar_pce,
        "expected_false_links": result.settings.false_links,
        "null_decoys": result.null.n_decoys,
        "null_largest_decoy_pce": result.null.largest_decoy,
        "fingerprint_hypotheses": result.fp_hypotheses,
        "clusters_merged": result.merges,
        "shortlist": int(result.shortlisted),
        **{f"seconds_{k}": round(v, 3) for k, v in result.seconds.items()},
        **scores,
    }


def write_outputs(result: Clustering, out: Path, scores: dict[str, float]) -> Metrics:
    """Every file of the run under ``out``; returns the metrics."""
    out.mkdir(parents=True, exist_ok=True)
    _atomic_csv(
        out / "clusters.csv",
        CLUSTER_COLUMNS,
        (
            (r.path, "" if r.cluster is None else r.cluster, r.size_px, r.n_in_cluster, r.links, r.confidence)
            for r in result.rows
        ),
    )
    _atomic_csv(
        out / "pairs.csv", PAIR_COLUMNS, ((p.a, p.b, p.pce, p.geometry, p.log10_p_false_alarm) for p in result.pairs)
    )
    _atomic_csv(out / "left_alone.csv", ("path", "reason"), ((r.path, r.reason) for r in result.rows if r.reason))
    metrics = metrics_of(result, scores)
    write_json(out / "metrics.json", metrics)
    _write_html(result, out / "cluster_report.html", metrics)
    return metrics


def _thumb(path: str) -> str | None:
    try:
        with opened(path) as img:
            img.draft("RGB", (2 * THUMB, 2 * THUMB))  # a JPEG decoded at 1/2-1/8 scale: 12 MP in ~1/20 the time
            img = img.convert("RGB")
            img.thumbnail((THUMB, THUMB))
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=80)
    except Exception:  # noqa: BLE001 (a photo that cannot be drawn is listed without its picture)
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _similarity_png(result: Clustering) -> str | None:
    """The pairs' PCE as a matrix, photos ordered by cluster (the first ``cluster.max_heatmap``)."""
    ranked = sorted(result.rows, key=lambda r: (r.cluster is None, r.cluster or 0))
    order = [r.path for r in ranked if not r.reason][: result.settings.max_heatmap]
    if len(order) < 2:
        return None
    index = {p: i for i, p in enumerate(order)}
    m = np.full((len(order), len(order)), np.nan)
    for p in result.pairs:
        if p.a in index and p.b in index:
            m[index[p.a], index[p.b]] = m[index[p.b], index[p.a]] = math.log10(max(p.pce, 1.0))
    fig, ax = plt.subplots(figsize=(6, 5))
    im = ax.imshow(m, cmap="viridis", interpolation="nearest")
    fig.colorbar(im, ax=ax, label="log10 PCE (blank: not compared)")
    ax.set_title(f"pairs compared (bar: PCE {result.bar_pce:.4g})")
    ax.set_xlabel("photo (ordered by cluster)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _write_html(result: Clustering, path: Path, metrics: Metrics) -> None:
    env = Environment(loader=PackageLoader("sci_lightning.clustering"), autoescape=select_autoescape())
    rows = {r.path: r for r in result.rows}
    drawn = [r.path for r in result.rows]
    thumbs = dict(zip(drawn, in_threads(_thumb, drawn), strict=True))  # decoding lets go of the GIL
    html = env.get_template("cluster_report.html").render(
        result=result,
        metrics=metrics,
        clusters=[(c, [(p, Path(p).name, thumbs[p], rows[p]) for p in c.members]) for c in result.clusters],
        alone=[(r, Path(r.path).name, thumbs[r.path]) for r in result.rows if r.cluster is None],
        similarity=_similarity_png(result),
        sci=sci,
    )
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(html)
    os.replace(tmp, path)


def cluster_members(path: str | Path, cluster_id: int) -> list[str]:
    """The photos of cluster ``cluster_id`` in a ``clusters.csv`` (what ``action=enrol cluster.csv=...`` enrols)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise SCIConfigError("cluster.csv", f"{file} does not exist", "pass the clusters.csv of an action=cluster run")
    with file.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if not set(CLUSTER_COLUMNS) <= set(reader.fieldnames or ()):
            raise SCIConfigError(
                "cluster.csv", f"{file} is not a clusters.csv (columns {reader.fieldnames})", "use action=cluster's"
            )
        rows = list(reader)
    members = [r["path"] for r in rows if r["cluster"] == str(cluster_id)]
    if not members:
        found = sorted({int(r["cluster"]) for r in rows if r["cluster"]})
        raise SCIConfigError(
            "cluster.id",
            f"cluster {cluster_id} is not in {file} (clusters: {', '.join(map(str, found)) or 'none'})",
            "pick one of them (cluster_report.html shows each)",
        )
    return members
