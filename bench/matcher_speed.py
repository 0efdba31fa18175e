"""The matcher's costs beside PRNU's, measured in one run on this machine.

    python bench/matcher_speed.py [--photo PATH] [--cameras 10] [--repeats 3]

1. Training throughput (pairs/s at 64 px, batch 64, forward + backward + AdamW step) on the CPU, and on CUDA in
   bf16 autocast and fp32 when a GPU is present.
2. One 12 MP photo against ``--cameras`` fingerprints, the way ``evaluate.py method=matcher`` scores a whole
   photo (its 16 most central 128 px tiles): the residual (computed, then from the residual store) and the
   network, beside PCE on the same tiles and PCE on the whole photo. Fingerprints are random arrays of the photo's
   size (the cost does not depend on their content).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sci_lightning.data.images import load_rgb
from sci_lightning.fingerprint.core import grey_of, pce
from sci_lightning.fingerprint.residuals import ResidualStore
from sci_lightning.methods.matcher.scoring import photo_crops, score_photo
from sci_lightning.models.pcn import PairNet

from common import machine_line

VISION3 = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "vision-3"
KW = {"sigma": 5.0, "levels": 4, "wavelet": "db4", "grey_first": True}


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def training_rate(device: str, bf16: bool, steps: int = 6) -> float:
    net = PairNet().to(device)
    opt = torch.optim.AdamW(net.parameters(), 1e-3)
    x = torch.randn(64, 2, 64, 64, device=device)
    y = (torch.rand(64, device=device) > 0.5).float()

    def step() -> None:
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up (kernel selection)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * 64 / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photo", type=Path, default=next(iter(sorted(VISION3.rglob("*.jpg"))), None))
    ap.add_argument("--cameras", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(machine_line())
    print(f"training, 64 px pairs: CPU {training_rate('cpu', False):.0f} pairs/s", end="")
    if torch.cuda.is_available():
        fp32, bf16 = training_rate("cuda", False, 50), training_rate("cuda", True, 50)
        print(f"; CUDA fp32 {fp32:.0f}, bf16 {bf16:.0f} pairs/s (bf16 / fp32 {bf16 / fp32:.2f})", end="")
    print()

    img = load_rgb(args.photo)
    rng = np.random.default_rng(0)
    fps = {f"cam{k}": rng.standard_normal(img.shape[:2]).astype(np.float32) * 0.01 for k in range(args.cameras)}
    net = PairNet().eval()
    with tempfile.TemporaryDirectory() as tmp:
        store = ResidualStore(tmp, KW)
        shapes = [k.shape for k in fps.values()]
        t_residual = best_of(lambda: ResidualStore(None, KW).residual(str(args.photo), img), 1)
        store.residual(str(args.photo), img)  # fill the store
        t_stored = best_of(lambda: photo_crops(str(args.photo), shapes, store, 128, 16), args.repeats)
        crops = photo_crops(str(args.photo), shapes, store, 128, 16)
        t_net = best_of(lambda: score_photo(net, crops, fps, 128, "cpu", 64), args.repeats)
        grey = grey_of(img)

        def pce_tiles() -> None:
            for k in fps.values():
                for (y, x), w in zip(crops["positions"], crops["w"]):
                    pce(k[y : y + 128, x : x + 128] * grey[y : y + 128, x : x + 128], w)

        t_pce_tiles = best_of(pce_tiles, args.repeats)
        w_full = store.residual(str(args.photo), img)
        t_pce_full = best_of(lambda: [pce(k * grey, w_full) for k in fps.values()], 1)
    mp = img.shape[0] * img.shape[1] / 1e6
    print(f"one {mp:.1f} MP photo ({args.photo.name}) against {args.cameras} cameras:")
    print(f"  residual, computed:                      {t_residual:6.2f} s")
    print(f"  photo decode + residual from the store:  {t_stored:6.2f} s")
    print(f"  matcher, 16 tiles of 128 px:             {t_net:6.2f} s")
    print(f"  PCE, the same 16 tiles:                  {t_pce_tiles:6.2f} s")
    print(f"  PCE, whole photo:                        {t_pce_full:6.2f} s")
    print(f"  total matcher, residual stored: {t_stored + t_net:.2f} s; computed: {t_residual + t_net:.2f} s")
    print(f"ratio matcher / PCE on the same tiles: {t_net / t_pce_tiles:.1f}")


if __name__ == "__main__":
    main()
