"""Every method under the same transforms (``eval.transform``), beside the oracle: the robustness table.

    python bench/geometry_robustness.py [--methods prnu matcher] [--transforms none rot90 ...] [--open-set]
                                        [--cnn-ckpt PATH] [--out DIR]

On vision-3 as a forensic case (flat references -> natural questioned photos, ``data.split.mode=column``), each
method is run through its entry point with ``eval.transform=T`` (the same deterministic copies for all) and the
verdicts are counted: right camera named / wrong camera named / "unknown". For PRNU the **oracle** is the same
decision rule (the run's own false-alarm bar, read from its calibration.json) told the true transform: each
camera's fingerprint mapped onto the questioned photo exactly as the transform moved the pixels (transforms.csv),
one hypothesis per camera. search / oracle = the share of the oracle's right decisions the search keeps. The
transform found is checked against the truth: scale within 1 %, crop offset within 1 px.

``--open-set`` (instead of the table): each camera's references left out in turn
(``data.split.exclude_reference``) for every transform:
its photos must come out "unknown" (false attributions counted).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from sci_lightning.data.images import load_rgb
from sci_lightning.data.size_settings import band_box
from sci_lightning.data.transforms import SETTINGS
from sci_lightning.data.transforms import TRANSFORMS as ALL_TRANSFORMS
from sci_lightning.fingerprint.core import grey_of, noise_residual, pce
from sci_lightning.fingerprint.geometry import orient_to_photo, resample
from sci_lightning.fingerprint.references import fingerprint_of
from sci_lightning.fingerprint.residuals import ResidualStore
from sci_lightning.fingerprint.significance import log10_false_alarm

from common import machine_line

REPO = Path(__file__).resolve().parents[1]
VISION3 = REPO.parent / "shared" / "realdata" / "vision-3"
CASE = ["data=vision3", "data.split.mode=column", "logger=csv"]
TRANSFORMS = [t for t in ALL_TRANSFORMS if t != "mirror"]  # a mirrored copy is searched only with mirrors on
RESIDUAL = {"sigma": 5.0, "levels": 4, "wavelet": "db4", "grey_first": True}


def run(method: str, transform: str, out: Path, extra: list[str], case: list[str] = CASE) -> tuple[dict, float]:
    """One ``evaluate.py`` run; its metrics.json and wall time."""
    cmd = [sys.executable, "evaluate.py", f"method={method}", *case, f"eval.transform={transform}", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run([*cmd, f"hydra.run.dir={out}"], cwd=REPO, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads((out / "metrics.json").read_text()), time.perf_counter() - t0


def counts(out: Path) -> dict[str, int]:
    rows = list(csv.DictReader((out / "verdicts.csv").open()))
    known = [r for r in rows if r["true"] not in ("", "unknown")]
    return {
        "right": sum(r["decision"] == r["true"] for r in known),
        "wrong": sum(r["decision"] not in (r["true"], "unknown") for r in known),
        "unknown": sum(r["decision"] == "unknown" for r in known),
        "false_attr": sum(r["decision"] != "unknown" for r in rows if r["true"] == "unknown"),
        "n": len(known),
        "n_unknown": sum(r["true"] == "unknown" for r in rows),
    }


def truth_of(transform: str) -> dict[str, dict]:
    """transforms.csv of the copies (path -> what was done), from the default cache folder."""
    found = sorted(Path.home().glob(f".cache/sci_lightning/transformed/{transform}-42-v*/transforms.csv"))
    return {r["path"]: r for r in csv.DictReader(found[-1].open())} if found else {}


def oracle_fingerprint(k: np.ndarray, t: dict, shape: tuple[int, int]) -> np.ndarray | None:
    """The fingerprint moved exactly as the transform ``t`` moved the pixels, on a photo of ``shape``."""
    rot, mirror, scale = int(t["rotation"]), t["mirror"] == "True", float(t["scale"])
    oy, ox = int(t["offset_y"]), int(t["offset_x"])
    turned = shape if rot in (0, 180) else shape[::-1]
    if t.get("setting"):  # a camera's size setting: its band of the whole frame, resampled to the photo (each axis)
        band = SETTINGS[t["setting"]][2]
        oy, ox, h, w = band_box(k.shape[1], k.shape[0], band) if band else (0, 0, *k.shape)
        return orient_to_photo(resample(k[oy : oy + h, ox : ox + w], *turned), rot, mirror)
    h, w = round(turned[0] / scale), round(turned[1] / scale)
    if oy + h > k.shape[0] + 1 or ox + w > k.shape[1] + 1:
        return None  # this camera's frame cannot hold the photo as the transform made it
    window = k[oy : oy + h, ox : ox + w]
    window = resample(window, *turned) if window.shape != turned else window
    return orient_to_photo(window, rot, mirror)


def oracle(transform: str, bar: float) -> dict[str, int]:
    """Right / wrong / unknown decisions of the oracle on vision-3's natural photos under ``transform``."""
    rows = list(csv.DictReader((VISION3 / "manifest.csv").open()))
    store = ResidualStore(Path.home() / ".cache/sci_lightning", RESIDUAL)
    fps = {}
    for cam in sorted({r["camera"] for r in rows}):
        fps[cam] = fingerprint_of(
            [str(VISION3 / r["path"]) for r in rows if r["camera"] == cam and r["content"] == "flat"], store
        )
    truth = {
        r["source"]: {**r, "setting": transform if transform in SETTINGS else ""} for r in truth_of(transform).values()
    }
    out = {"right": 0, "wrong": 0, "unknown": 0}
    for r in (r for r in rows if r["content"] == "natural"):
        src = str(VISION3 / r["path"])
        t = truth.get(src, {"rotation": 0, "mirror": "False", "scale": 1.0, "offset_y": 0, "offset_x": 0, "path": src})
        img = load_rgb(t["path"])
        w, grey = noise_residual(img), grey_of(img)
        scores = {}
        for cam, k in fps.items():
            kp = oracle_fingerprint(k, t, w.shape[:2])
            scores[cam] = -np.inf if kp is None else pce(kp * grey, w)[0]
        best = max(scores, key=scores.get)
        named = log10_false_alarm(scores[best], len(fps)) <= bar
        key = "unknown" if not named else ("right" if best == r["camera"] else "wrong")
        out[key] += 1
    return out


def found_vs_truth(out: Path, transform: str) -> str:
    """How well the transform found matches the truth (named photos only)."""
    truth = truth_of(transform)
    rows = [r for r in csv.DictReader((out / "verdicts.csv").open()) if r["decision"] not in ("unknown",)]
    ok, checked = 0, 0
    for r in rows:
        t = truth.get(r["path"])
        if t is None or r.get("transform") in (None, "aligned"):
            continue
        checked += 1
        if transform in ("scale50", "social1600", "cropscale", *SETTINGS):
            ok += abs(float(r["scale"]) - float(t["scale"])) <= 0.01 * float(t["scale"])
        elif transform == "crop60":
            ok += (
                abs(int(r["offset_y"]) - int(t["offset_y"])) <= 1 and abs(int(r["offset_x"]) - int(t["offset_x"])) <= 1
            )
        else:
            ok += int(r["rotation"]) == int(t["rotation"])
    return f"{ok}/{checked}" if checked else "-"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", nargs="+", default=["prnu", "matcher"])
    ap.add_argument("--transforms", nargs="+", default=TRANSFORMS)
    ap.add_argument("--cnn-ckpt", default=None, help="a checkpoint trained on this case (for --methods cnn)")
    ap.add_argument("--open-set", action="store_true", help="also leave each camera's references out in turn")
    ap.add_argument("--out", default="outputs/bench/geometry")
    ap.add_argument("--extra", nargs="*", default=[], help="more overrides for every run (e.g. geometry=full)")
    ap.add_argument("--builtin", action="store_true", help="the built-in data instead (k-fold, fold 0: accuracy)")
    args = ap.parse_args()
    out_root = REPO / args.out
    print(machine_line())
    if args.builtin:
        return builtin(args, out_root)
    print(f"case: {' '.join(CASE)} {' '.join(args.extra)}")
    if args.open_set:
        return open_set(args, out_root)
    print("| method | transform | right | wrong | unknown | oracle right | search / oracle | transform found | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for method in args.methods:
        extra = [*args.extra, *([f"ckpt_path={args.cnn_ckpt}"] if method == "cnn" else [])]
        for t in args.transforms:
            out = out_root / f"{method}-{t}"
            metrics, secs = run(method, t, out, extra)
            c = counts(out)
            orc, ratio, found = "", "", ""
            if method == "prnu":
                bar = json.loads((out / "calibration.json").read_text()).get("log10_bar")
                if bar is not None:
                    o = oracle(t, bar)
                    orc = f"{o['right']}/{c['n']}"
                    ratio = f"{c['right'] / o['right']:.2f}" if o["right"] else "-"
                    found = found_vs_truth(out, t)
            print(
                f"| {method} | {t} | {c['right']}/{c['n']} | {c['wrong']} | {c['unknown']} | {orc} | {ratio} | "
                f"{found} | {secs:.0f} |",
                flush=True,
            )
    return 0


def open_set(args: argparse.Namespace, out_root: Path) -> int:
    """Each camera's references left out in turn, for every transform: its photos must come out unknown."""
    print("Open set (each camera's references left out in turn): false attributions of its photos")
    print("| method | transform | left out | its photos named (wrong) | other photos right |")
    print("|---|---|---|---|---|")
    classes = ["Apple_iPhone_4", "SAMSUNG_GT-P5210", "WIKO_RIDGE_4G"]
    for method in args.methods:
        for t in args.transforms:
            for cls in classes:
                out = out_root / f"open-{method}-{t}-{cls}"
                run(method, t, out, [*args.extra, f"data.split.exclude_reference=[{cls}]"])
                c = counts(out)
                print(
                    f"| {method} | {t} | {cls} | {c['false_attr']}/{c['n_unknown']} | {c['right']}/{c['n']} |",
                    flush=True,
                )
    return 0


def builtin(args: argparse.Namespace, out_root: Path) -> int:
    """The built-in virtual cameras (model level, fold 0 of 10): closed-set image accuracy per transform."""
    case = ["logger=csv"]
    print("built-in data (synthetic miche_like, 256 px rear / 192 px front cameras), model level, fold 0 of 10")
    print("| method | transform | test/acc_image | s |")
    print("|---|---|---|---|")
    for method in args.methods:
        extra = [*args.extra, *([f"ckpt_path={args.cnn_ckpt}"] if method == "cnn" else [])]
        for t in args.transforms:
            metrics, secs = run(method, t, out_root / f"builtin-{method}-{t}", extra, case)
            print(f"| {method} | {t} | {metrics['test/acc_image']:.3f} | {secs:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
