"""Blind source clustering's cost against the number of photos, with the shortlist, and the shortlist's result
against every pair's.

    python bench/cluster_scale.py --work DIR [--units 67] [--per-camera 50] [--sizes 500 1000 2000 5000 10000]
                                  [--exhaustive 1000] [--out DIR] [--photos DIR]

Virtual cameras (profile many_units: 3 models x ``units`` units, each photographing its own scenes, 512 px) are
photographed once into ``--work`` (kept: 10,050 photos take ~40 min on 2 cores); each point clusters the photos of
its first n / per-camera cameras (the models in turn), in a fresh process (its peak memory is its own), residuals
made on a local Dask cluster (2 processes) and not cached, default settings (the shortlist from 300 photos).
Prints seconds per stage, per photo, peak RSS, ARI / pair precision / recall against the truth (each point's log
beside its output folder: ``out<n>.log``); at
``--exhaustive`` n photos it also compares every pair and prints the ARI between the two results. Plots seconds
per photo against n (``cluster_scale.png``).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from common import machine_line

RESIDUAL = {"sigma": 5.0, "levels": 4, "wavelet": "db4", "grey_first": True}


def photographed(work: Path, units: int, per_camera: int) -> Path:
    from sci_lightning.data.synthetic.generate import SyntheticSettings, generate

    photos = work / "photos"
    if not (photos / "manifest.csv").exists():
        s = SyntheticSettings(
            profile="many_units", images_per_camera=per_camera, image_size=512, units=units, shared_scenes=False
        )
        generate(photos, s, workers=2)
    return photos


def subset(photos: Path, n_cameras: int, work: Path) -> Path:
    """The first ``n_cameras`` cameras' folders, taking the three models in turn (unit 1 of each, then unit 2...),
    hard-linked into a folder of their own."""
    out = work / f"cameras{n_cameras}"
    cams = [c for d in sorted(photos.iterdir()) if d.is_dir() for c in sorted(d.iterdir()) if c.is_dir()]
    cams.sort(key=lambda c: (c.name.rsplit("_", 1)[-1], c.parent.name))
    if not out.exists():
        tmp = out.with_suffix(".tmp")
        for cam in cams[:n_cameras]:
            (tmp / cam.name).mkdir(parents=True, exist_ok=True)
            for f in cam.glob("*.jpg"):
                os.link(f, tmp / cam.name / f.name)
        tmp.rename(out)
    return out


def one_point(images: Path, out: Path, shortlist_from: int) -> dict:
    from sci_lightning.clustering.action import ClusterJob, cluster_action
    from sci_lightning.clustering.settings import ClusterSettings

    t = time.perf_counter()
    s = ClusterSettings(truth="parent", shortlist_from=shortlist_from)
    m = cluster_action(ClusterJob(s, RESIDUAL, str(images), (".jpg",), out))
    m["seconds_total"] = time.perf_counter() - t
    m["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return m


def _labels(out: Path) -> dict[str, str]:
    with (out / "clusters.csv").open(newline="") as fh:
        return {r["path"]: r["cluster"] or r["path"] for r in csv.DictReader(fh)}


def _run(images: Path, out: Path, shortlist_from: int) -> dict:
    cmd = [sys.executable, __file__, "--point", str(images), "--point-out", str(out), "--from", str(shortlist_from)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    out.with_suffix(".log").write_text(done.stderr)  # the run's log: a line per cluster-fingerprint round
    if done.returncode:
        raise SystemExit(f"point {images} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _line(label: str, m: dict) -> str:
    n = m["n_photos"]
    return (
        f"{label} n={n:6d} pairs={m['n_pairs']:8d} of {m['hypotheses']:10d} hypotheses | residuals "
        f"{m['seconds_residuals']:.0f} s, pairs {m['seconds_pairs']:.0f} s, fingerprints "
        f"{m['seconds_fingerprints']:.0f} s, total {m['seconds_total']:.0f} s = {m['seconds_total'] / n:.3f} s/photo "
        f"| peak {m['peak_rss_mb']:.0f} MB | clusters {m['n_clusters']} of {m['cluster/n_cameras']:.0f} cameras, "
        f"ARI {m['cluster/ari']:.3f}, pair precision {m['cluster/pair_precision']:.4f}, "
        f"recall {m['cluster/pair_recall']:.3f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("cluster_scale_work"))
    ap.add_argument("--photos", type=Path, help="an existing set of <device>/<camera>/*.jpg (else photographed)")
    ap.add_argument("--units", type=int, default=67)
    ap.add_argument("--per-camera", type=int, default=50)
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000, 5000, 10000])
    ap.add_argument("--exhaustive", type=int, nargs="*", default=[1000])
    ap.add_argument("--out", type=Path, default=Path("."))
    ap.add_argument("--point", type=Path, help=argparse.SUPPRESS)  # one point, in this process (internal)
    ap.add_argument("--point-out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--from", dest="shortlist_from", type=int, default=300, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.point is not None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        print(json.dumps(one_point(args.point, args.point_out, args.shortlist_from)))
        return
    print(machine_line())
    photos = args.photos or photographed(args.work, args.units, args.per_camera)
    rows = []
    from sklearn.metrics import adjusted_rand_score

    for n in args.sizes:
        images = subset(photos, max(1, n // args.per_camera), args.work)
        m = _run(images, args.work / f"out{n}", 300)
        rows.append(m)
        print(_line("shortlist ", m), flush=True)
        if n in args.exhaustive:
            e = _run(images, args.work / f"out{n}-every", 10**9)
            print(_line("every pair", e), flush=True)
            a, b = _labels(args.work / f"out{n}"), _labels(args.work / f"out{n}-every")
            keys = sorted(a)
            ari = adjusted_rand_score([a[k] for k in keys], [b[k] for k in keys])
            print(f"n={n}: ARI between the shortlist's clusters and every pair's: {ari:.4f}", flush=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([m["n_photos"] for m in rows], [m["seconds_total"] / m["n_photos"] for m in rows], "o-")
    ax.set_xscale("log")
    ax.set_xlabel("photos")
    ax.set_ylabel("seconds per photo (with the shortlist)")
    ax.set_title("blind clustering, 512 px virtual photos, 2 cores")
    fig.savefig(args.out / "cluster_scale.png", dpi=100, bbox_inches="tight")
    print(f"plot: {args.out / 'cluster_scale.png'}")


if __name__ == "__main__":
    main()
