"""``method=prnu``: the classical PRNU baseline (Lukáš–Fridrich–Goljan 2006; Chen et al. 2008) on the same folds,
crops and outputs as the other methods. The maths (residuals, fingerprints, NCC, PCE, the geometry search) is in
:mod:`sci_lightning.fingerprint`; nothing here imports torch or Lightning.

The face every method package has (:mod:`sci_lightning.run.registry`): ``train(cfg)`` and ``evaluate(cfg)``, each
returning what the run's ``metrics.json`` holds."""

from sci_lightning.methods.prnu.run import evaluate, train

__all__ = ["evaluate", "train"]
