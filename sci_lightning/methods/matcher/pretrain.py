"""``python -m sci_lightning.methods.matcher.pretrain [out=FILE] [option=value ...]``: pre-train the matcher on
virtual cameras and write the weights ``method=matcher`` starts from. ``... pretrain check=FILE`` re-measures a
weight file's recorded check numbers.

The synthetic ``many_units`` profile gives ``units`` units of each of three device models (each unit its own
PRNU; the units of a model otherwise identical, so same-model negatives are hard). The last ``val_units`` units
of each model are held out: the validation numbers are on cameras the network never trained on. Residuals come
from the project's PRNU code and store (``cache_dir``), so a second run denoises nothing.

Options (defaults in :class:`PretrainSettings` and :class:`~.fit.FitSettings`) include ``units``,
``images_per_camera``, ``data_seed``, ``jpeg_quality=[lo,hi]``, ``prnu_strength``, ``val_units``, ``crop``,
``epochs``, ``pairs_per_epoch``, ``max_minutes``, ``workers``. The file records its settings, the command and
the validation numbers; a JSON copy of the record sits beside it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf
from sklearn.metrics import roc_auc_score

from sci_lightning.data.layouts import read_synthetic
from sci_lightning.errors import SCIConfigError
from sci_lightning.fingerprint.references import camera_stacks
from sci_lightning.fingerprint.residuals import ResidualStore
from sci_lightning.methods.matcher.fit import FitSettings, fit, load_weights, net_from, record_of, save_weights
from sci_lightning.methods.matcher.pairs import PairDataset
from sci_lightning.outputs import Metrics

log = logging.getLogger(__name__)

SHIPPED = Path(__file__).parent / "weights" / "pcn_many_units.pt"
CHECK_CROP, CHECK_PAIRS = 64, 512
# conf/prnu/default.yaml's residual: the matcher and PRNU share one residual per photo
RESIDUAL_KW = {"sigma": 5.0, "levels": 4, "wavelet": "db4", "grey_first": True}


@dataclass
class PretrainSettings:
    """The virtual cameras the network is pre-trained on, and the network's size."""

    units: int = 32
    images_per_camera: int = 32
    image_size: int = 256
    data_seed: int = 100  # not 0: the default data sets (seed 0) stay unseen cameras
    jpeg_quality: list[int] = field(default_factory=lambda: [75, 95])
    prnu_strength: float = 0.01
    val_units: int = 4  # per model, held out
    width: int = 64
    cache_dir: str = "~/.cache/sci_lightning"
    workers: int = 0  # 0: every core


def pretrain(out: Path, data: PretrainSettings, settings: FitSettings, check: bool = True) -> Metrics:
    """Generate (once) the virtual cameras, build the stacks, fit, write ``out`` and ``out.json`` (with the
    :func:`check_metrics` numbers unless ``check=False``)."""
    started = time.time()
    workers = data.workers or os.cpu_count() or 1
    root = Path(os.path.expanduser(data.cache_dir)) / "synthetic"
    index = read_synthetic(
        root,
        cache_workers=workers,
        profile="many_units",
        units=data.units,
        images_per_camera=data.images_per_camera,
        image_size=data.image_size,
        seed=data.data_seed,
        jpeg_quality=data.jpeg_quality,
        prnu_strength=data.prnu_strength,
    )
    cameras = sorted({r.camera for r in index.records})
    held = {c for c in cameras if int(c.rsplit("unit", 1)[1]) > data.units - data.val_units}
    residuals = ResidualStore(data.cache_dir, RESIDUAL_KW)
    train = camera_stacks([r for r in index.records if r.camera not in held], residuals, workers)
    val = camera_stacks([r for r in index.records if r.camera in held], residuals, workers)
    log.info("pre-training on %d cameras, validating on %d unseen ones", len(train), len(val))
    net = {"width": data.width}
    module, metrics = fit(train, val, settings, net, accelerator="cpu")
    record = {
        "command": "python -m sci_lightning.methods.matcher.pretrain " + " ".join(sys.argv[1:]),
        "data": asdict(data),
        "fit": asdict(settings),
        "residual": RESIDUAL_KW,
        "train_cameras": len(train),
        "val_cameras": len(val),
        "val_metrics": metrics,
        "minutes": round((time.time() - started) / 60, 1),
    }
    if check:
        record["check"] = check_metrics(module.net, data.cache_dir, workers)
    save_weights(out, module.net.state_dict(), net, record, json_copy=True)
    return record


def check_metrics(net: torch.nn.Module, cache_dir: str, workers: int) -> dict[str, float]:
    """A small, fixed measurement any copy of the weights must reproduce (the shipped file records it): 512
    balanced 64 px pairs (seed 0) of the default ``units_of_one_model`` set, cameras the network never saw."""
    index = read_synthetic(Path(os.path.expanduser(cache_dir)) / "synthetic", workers, profile="units_of_one_model")
    stacks = camera_stacks(index.records, ResidualStore(cache_dir, RESIDUAL_KW), workers)
    pairs = PairDataset(stacks, CHECK_CROP, CHECK_PAIRS, seed=0, hard_negatives=1.0)
    items = [pairs[i] for i in range(len(pairs))]
    x = torch.stack([pair for pair, _ in items])
    y = np.array([float(label) for _, label in items])
    net.eval()
    with torch.no_grad():
        logits = torch.cat([net(x[s : s + 128]) for s in range(0, len(x), 128)]).numpy()
    return {
        "check/acc_pair": float(np.mean((logits > 0) == (y > 0.5))),
        "check/roc_auc_pair": float(roc_auc_score(y, logits)),
    }


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        args = OmegaConf.to_container(OmegaConf.from_dotlist(argv))
        if "check" in args:
            return _recheck(Path(str(args["check"])), args.get("cache_dir", PretrainSettings.cache_dir))
        out = Path(args.pop("out", SHIPPED))
        groups = {}
        for cls in (PretrainSettings, FitSettings):
            names = {f.name for f in fields(cls)}
            groups[cls] = cls(**{k: args.pop(k) for k in list(args) if k in names})
        if args:
            known = sorted({f.name for c in (PretrainSettings, FitSettings) for f in fields(c)} | {"out"})
            raise SCIConfigError(", ".join(sorted(args)), "unknown option", "use " + ", ".join(known))
    except SCIConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    record = pretrain(out, groups[PretrainSettings], groups[FitSettings])
    print(json.dumps(record["val_metrics"], indent=1))
    print(f"wrote {out} ({record['minutes']} min)")
    return 0


def _recheck(path: Path, cache_dir: str) -> int:
    """Measure the check numbers of ``path`` and store them in its record (file and JSON copy)."""
    blob = load_weights(path, "check")
    record = {**record_of(blob), "check": check_metrics(net_from(blob), cache_dir, os.cpu_count() or 1)}
    save_weights(path, blob["state_dict"], blob["net"], record, json_copy=True)
    print(json.dumps(record["check"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
