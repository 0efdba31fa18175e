"""PRNU (PCE and NCC), the learned matcher and optionally the CNN side by side, one row per crop size, on the
same photos and fold (issue 12's comparison table; accuracy, not speed: the output goes to docs/RESULTS.md).

    python bench/compare_crops.py --out DIR --sizes 32 64 128 256 --crops 4 \\
        [--cnn-ckpt outputs/.../best.ckpt] [--matcher-ckpt FILE] -- OVERRIDE ...

Every run is ``python evaluate.py`` with the overrides after ``--`` (data, task, fold ...), ``eval.crop=P`` and
``eval.crops_per_image=--crops``, written to ``DIR/<method>-<P>/``; a run whose ``metrics.json`` exists is
reused. Prints a markdown table: crop accuracy, photo accuracy, ROC AUC and TPR at 1 % FPR per method, and the
matcher's share of PCE's crop errors.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KEYS = ("test/acc_crop", "test/acc_image", "test/roc_auc", "test/tpr_at_fpr_0.01")


def run(out: Path, name: str, size: int, crops: int, extra: list[str]) -> dict:
    folder = out / f"{name}-{size}"
    if not (folder / "metrics.json").is_file():
        cmd = [sys.executable, str(REPO / "evaluate.py"), *extra, f"eval.crop={size}"]
        cmd += [f"eval.crops_per_image={crops}", "logger=none", f"hydra.run.dir={folder}"]
        print("+", " ".join(cmd[1:]), file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return json.loads((folder / "metrics.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 256])
    ap.add_argument("--crops", type=int, default=4)
    ap.add_argument("--cnn-ckpt")
    ap.add_argument("--matcher-ckpt")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    methods = {
        "pce": ["method=prnu", "prnu.decision=pce"],
        "ncc": ["method=prnu", "prnu.decision=ncc"],
        "matcher": ["method=matcher", *([f"ckpt_path={args.matcher_ckpt}"] if args.matcher_ckpt else [])],
    }
    if args.cnn_ckpt:
        methods["cnn"] = [f"ckpt_path={args.cnn_ckpt}"]
    names = list(methods)
    heads = [f"{k.split('/')[1]} " + " / ".join(names) for k in KEYS]
    print("| P | " + " | ".join(heads) + " | matcher errors / PCE's |")
    print("|---" * (len(KEYS) + 2) + "|")
    for size in args.sizes:
        m = {n: run(args.out, n, size, args.crops, [*args.overrides, *methods[n]]) for n in names}
        cells = [" / ".join(f"{m[n][k]:.3f}" for n in names) for k in KEYS]
        err = {n: 1 - m[n]["test/acc_crop"] for n in ("pce", "matcher")}
        share = f"{err['matcher'] / err['pce']:.2f}" if err["pce"] > 0 else ("0 / 0" if err["matcher"] == 0 else "inf")
        print(f"| {size} ({m['pce']['n_test_crops']} crops) | " + " | ".join(cells) + f" | {share} |", flush=True)


if __name__ == "__main__":
    main()
