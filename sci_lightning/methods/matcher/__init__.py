"""``method=matcher``: the learned fingerprint matcher (Mandelli et al. 2020), fine-tuned with Lightning, on the
same folds, crops and outputs as the other methods.

The face every method package has (:mod:`sci_lightning.run.registry`): ``train(cfg)`` and ``evaluate(cfg)``, each
returning what the run's ``metrics.json`` holds."""

from sci_lightning.methods.matcher.run import evaluate, train

__all__ = ["evaluate", "train"]
