"""The CNN on transformed test photos (``evaluate.py ckpt_path=... eval.transform=NAME``): each test photo of the
checkpoint's fold is replaced by its deterministic transformed copy (:mod:`sci_lightning.data.transforms`) and
scored photo by photo, exactly as questioned photos are (the patch grid of the copy as stored), so the CNN is
measured under the same transforms as PRNU and the matcher. The patch cache is not used: it holds the originals.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from sci_lightning.data.transforms import transform_paths
from sci_lightning.forensic.decisions import open_set_metrics
from sci_lightning.forensic.verification import class_pair_metrics
from sci_lightning.methods.cnn.verdicts import cnn_verdicts, score_rows_for_csv
from sci_lightning.outputs import Metrics, write_image_results, write_ranked_predictions, write_skipped

log = logging.getLogger(__name__)


def evaluate_transformed(
    module: Any, records: list, classes: list[str], label_field: str, settings: Any, cal: Any, cfg: Any, out_dir: Path
) -> Metrics:
    """Image-level accuracy and open-set rates of the CNN on the transformed test photos; writes
    ``predictions.csv``, ``skipped_images.csv`` and the image-level confusion matrix. Returns ``test/*`` metrics."""
    name = str(cfg.eval.transform)
    mapping = transform_paths([str(r.path) for r in records], name, cfg.paths.cache_dir, int(cfg.seed))
    truth = {mapping[str(r.path)]: r.label(label_field) for r in records}
    module.eval()
    verdicts, skipped = cnn_verdicts(module, [Path(p) for p in truth], settings, classes, cal, truth)
    write_ranked_predictions(out_dir / "predictions.csv", classes, score_rows_for_csv(verdicts, skipped))
    if skipped:
        write_skipped(out_dir / "skipped_images.csv", [(r["path"], r["reason"]) for r in skipped])
    y = np.array([classes.index(v["true"]) for v in verdicts])
    pred = np.array([int(np.argmax(v["probs"])) for v in verdicts])
    image = write_image_results(out_dir, classes, y, pred, f"CNN, eval.transform={name}")
    probs = np.stack([v["probs"] for v in verdicts])
    ver = class_pair_metrics(probs, y, len(classes), (out_dir / "roc.png", f"CNN, eval.transform={name}"))
    log.info("CNN on %d test photos transformed by %s: image acc %.4f", len(verdicts), name, image["test/acc_image"])
    return {
        "eval_transform": name,
        **image,
        **ver,
        "n_test_images": len(verdicts),
        "n_skipped_images": len(skipped),
        **open_set_metrics(verdicts),
    }
