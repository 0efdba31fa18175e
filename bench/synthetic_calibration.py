"""Calibration of the built-in virtual cameras: how the paper CNN's test accuracy moves with PRNU strength and
JPEG quality. Runs ``train.py`` once per setting (default: fold 0 of 5, 10 epochs) and prints a markdown table.

    python bench/synthetic_calibration.py [--folds 5] [--fold 0] [--extra trainer.max_epochs=10 ...]

Takes about 15 minutes on a 2-core CPU (each setting generates its own data set once, cached afterwards).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SETTINGS = [  # (label, data overrides)
    *[(f"PRNU {p * 100:g}%", [f"data.prnu_strength={p}"]) for p in (0.0, 0.0025, 0.005, 0.01, 0.02)],
    *[(f"JPEG q={q}", [f"data.jpeg_quality=[{q},{q}]"]) for q in (70, 85, 95)],
]
UNITS = [
    (f"units_of_one_model, PRNU {p * 100:g}%", ["data.profile=units_of_one_model", f"data.prnu_strength={p}"])
    for p in (0.0, 0.02)
]


def train(overrides: list[str], out: Path) -> dict:
    cmd = [
        sys.executable,
        "train.py",
        f"hydra.run.dir={out}",
        "logger=csv",
        "+trainer.enable_progress_bar=false",
        *overrides,
    ]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return json.loads((out / "metrics.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--extra", nargs="*", default=[])
    args = ap.parse_args()
    common = [f"n_folds={args.folds}", f"fold={args.fold}", *args.extra]
    print(f"train.py {' '.join(common)} (data=synthetic, profile miche_like unless stated)\n")
    print("| setting | model-level patch | model-level image | sensor-level patch | sensor-level image | seconds |")
    print("|---|---|---|---|---|---|")
    os.environ.setdefault("WANDB_MODE", "disabled")
    with tempfile.TemporaryDirectory() as tmp:
        rows = [(label, ov, ("model_level", "sensor_level")) for label, ov in SETTINGS]
        rows += [(label, ov, ("sensor_level",)) for label, ov in UNITS]
        for i, (label, ov, tasks) in enumerate(rows):
            start, cells = time.time(), {}
            for task in tasks:
                m = train([*common, f"task={task}", *ov], Path(tmp) / f"{i}-{task}")
                cells[task] = (f"{m['test/acc_patch']:.3f}", f"{m['test/acc_image']:.3f} ({m['n_test_images']} img)")
            model = cells.get("model_level", ("—", "—"))
            sensor = cells["sensor_level"]
            print(
                f"| {label} | {model[0]} | {model[1]} | {sensor[0]} | {sensor[1]} | {time.time() - start:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
