"""Blind source clustering's cost against the number of photos: every pair compared (no shortlist yet).

    python bench/cluster_scale.py [--units 2 4 8] [--per-camera 6] [--size 512] [--out DIR]

Virtual cameras (profile many_units: 3 models x ``units`` units, each photographing its own scenes, ``size`` px),
``3 * units * per_camera`` photos per point; each point runs in a fresh process (its peak memory is its own), one
process, residuals computed (no store). Prints seconds per stage, per photo and per compared hypothesis, peak RSS,
ARI / pair precision against the truth, and plots seconds per photo against n (``cluster_scale.png``).
Comparing every pair costs n^2 / 2: this measures that curve, which the shortlist of issue 27 is to flatten.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine_line

RESIDUAL = {"sigma": 5.0, "levels": 4, "wavelet": "db4", "grey_first": True}


def one_point(units: int, per_camera: int, size: int, work: Path) -> dict:
    from sci_lightning.clustering.action import ClusterJob, cluster_action
    from sci_lightning.clustering.settings import ClusterSettings
    from sci_lightning.data.synthetic.generate import SyntheticSettings, generate

    s = SyntheticSettings(
        profile="many_units", images_per_camera=per_camera, image_size=size, units=units, shared_scenes=False
    )
    photos = generate(work / "photos", s, workers=2)
    t = time.perf_counter()
    m = cluster_action(ClusterJob(ClusterSettings(truth="parent"), RESIDUAL, str(photos), (".jpg",), work / "out"))
    m["seconds_total"] = time.perf_counter() - t
    m["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return m


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--units", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--per-camera", type=int, default=6)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--out", type=Path, default=Path("."))
    ap.add_argument("--point", type=int, help=argparse.SUPPRESS)  # one point, in this process (internal)
    args = ap.parse_args()
    if args.point is not None:
        with tempfile.TemporaryDirectory() as tmp:
            m = one_point(args.point, args.per_camera, args.size, Path(tmp))
        print(json.dumps(m))
        return
    print(machine_line())
    rows = []
    for units in args.units:
        cmd = [sys.executable, __file__, "--point", str(units), "--per-camera", str(args.per_camera)]
        out = subprocess.run([*cmd, "--size", str(args.size)], capture_output=True, text=True, check=True)
        m = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(m)
        n = m["n_photos"]
        print(
            f"n={n:5d} cameras={3 * units:3d} pairs={m['n_pairs']:7d} hypotheses={m['hypotheses']:8d} | "
            f"residuals {m['seconds_residuals']:.1f} s, pairs {m['seconds_pairs']:.1f} s, fingerprints "
            f"{m['seconds_fingerprints']:.1f} s | {m['seconds_total'] / n:.3f} s/photo, "
            f"{1000 * m['seconds_pairs'] / max(m['hypotheses'], 1):.2f} ms/hypothesis | peak {m['peak_rss_mb']:.0f} MB "
            f"| ARI {m['cluster/ari']:.3f}, pair precision {m['cluster/pair_precision']:.3f}, "
            f"recall {m['cluster/pair_recall']:.3f}",
            flush=True,
        )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([m["n_photos"] for m in rows], [m["seconds_total"] / m["n_photos"] for m in rows], "o-")
    ax.set_xlabel("photos")
    ax.set_ylabel("seconds per photo (all pairs)")
    ax.set_title(f"blind clustering, {args.size} px virtual photos")
    fig.savefig(args.out / "cluster_scale.png", dpi=100, bbox_inches="tight")
    print(f"plot: {args.out / 'cluster_scale.png'}")


if __name__ == "__main__":
    main()
