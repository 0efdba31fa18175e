"""``method=cnn``: patch classifiers (the paper's CNN and its peers, :mod:`sci_lightning.models`) trained with
Lightning; image decisions from the mean of patch probabilities; temperature-calibrated verdicts.

The face every method package has (:mod:`sci_lightning.run.registry`): ``train(cfg)`` fits and tests a fold,
``evaluate(cfg)`` reproduces a checkpoint's test metrics or gives verdicts on a folder of photos; each returns what
the run's ``metrics.json`` holds."""

from sci_lightning.methods.cnn.evaluate import evaluate
from sci_lightning.methods.cnn.train import train

__all__ = ["evaluate", "train"]
