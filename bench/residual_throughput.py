"""Residual extraction, ours vs the reference implementation, on the same crops in the same run.

    python bench/residual_throughput.py [--crops 24] [--size 512] [--repeats 3]

Ours: :func:`sci_lightning.fingerprint.core.noise_residual` (the residual every PRNU path, the matcher and the
residual store use; grey first, the default) and the same per colour channel (``prnu.grey_first=false``).
Reference: polimi-ispl/prnu-python's ``extract_single`` from ``../shared/anchors/prnu-python`` (measured
beside ours only; nothing of it ships). Same crops of synthetic photos of four sensors (``units_of_one_model``
camera model, 1 % PRNU), same settings (4 levels, sigma 5), one process each, interleaved repeats, best of.
"Same detection accuracy": fingerprints from half of each sensor's crops, PCE of every other crop against every
fingerprint, with each implementation's residuals: the closed-set accuracy and the median matching PCE of both.
Prints crops/s of both and the ratio ours / reference (issue 12 target: >= 3).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from sci_lightning.data.synthetic.camera import photograph
from sci_lightning.data.synthetic.profiles import units_of_one_model
from sci_lightning.data.synthetic.scene import draw_scene
from sci_lightning.fingerprint.core import fingerprint_from_residuals, grey_of, noise_residual, pce

from common import machine_line

ANCHOR = Path(__file__).resolve().parents[2] / "shared" / "anchors" / "prnu-python"


def photos(n_per_sensor: int, size: int) -> tuple[list[np.ndarray], list[int]]:
    """Decoded synthetic JPEGs of four units of one model (they differ only in PRNU)."""
    from io import BytesIO

    from PIL import Image

    cams = units_of_one_model(size=size, seed=0)
    imgs, labels = [], []
    for c, cam in enumerate(cams):
        for k in range(n_per_sensor):
            scene = draw_scene(np.random.default_rng([0, 1, k]))
            data, _ = photograph(scene, cam, np.random.default_rng([0, 2, c, k]), 0.01, None)
            imgs.append(np.asarray(Image.open(BytesIO(data)).convert("RGB")))
            labels.append(c)
    return imgs, labels


def rate(fn, imgs: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
    start = time.perf_counter()
    out = [fn(img) for img in imgs]
    return len(imgs) / (time.perf_counter() - start), out


def accuracy(residuals: list[np.ndarray], imgs: list[np.ndarray], labels: list[int]) -> tuple[float, float]:
    """Closed-set accuracy and median matching PCE: fingerprints from the even crops, tests on the odd ones."""
    cams = sorted(set(labels))
    fps = {
        c: fingerprint_from_residuals(
            (w, grey_of(img)) for i, (w, img, y) in enumerate(zip(residuals, imgs, labels)) if y == c and i % 2 == 0
        )
        for c in cams
    }
    right, matching = [], []
    for i, (w, img, y) in enumerate(zip(residuals, imgs, labels)):
        if i % 2 == 0:
            continue
        scores = {c: pce(fps[c] * grey_of(img), w)[0] for c in cams}
        right.append(max(scores, key=scores.get) == y)
        matching.append(scores[y])
    return float(np.mean(right)), float(np.median(matching))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crops", type=int, default=24, help="photos per sensor (4 sensors)")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if not (ANCHOR / "functions.py").is_file():
        sys.exit(f"the reference implementation is not at {ANCHOR}")
    sys.path.insert(0, str(ANCHOR))
    import functions as reference  # noqa: PLC0415 (the anchor is found at run time, beside the checkout)

    imgs, labels = photos(args.crops, args.size)
    fns = {
        "ours": lambda img: noise_residual(img, sigma=5.0, levels=4, wavelet="db4"),  # the default: grey first
        "ours per colour": lambda img: noise_residual(img, sigma=5.0, levels=4, wavelet="db4", grey_first=False),
        "reference": lambda img: reference.extract_single(img, levels=4, sigma=5),
    }
    best = dict.fromkeys(fns, 0.0)
    outs = {}
    for _ in range(args.repeats):  # interleaved: drift in machine load hits all alike
        for name, fn in fns.items():
            r, outs[name] = rate(fn, imgs)
            best[name] = max(best[name], r)
    print(machine_line())
    print(f"{len(imgs)} crops of {args.size}x{args.size} px, 4 sensors, best of {args.repeats}")
    print(f"{'implementation':>16} {'crops/s':>8} {'accuracy':>9} {'median PCE':>11}")
    for name in fns:
        acc, med = accuracy(outs[name], imgs, labels)
        print(f"{name:>16} {best[name]:>8.2f} {acc:>9.3f} {med:>11.1f}")
    print(f"ratio ours / reference: {best['ours'] / best['reference']:.2f}")
    print(f"ratio ours per colour / reference: {best['ours per colour'] / best['reference']:.2f}")


if __name__ == "__main__":
    main()
