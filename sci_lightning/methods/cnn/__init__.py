"""``method=cnn``: patch classifiers (the paper's CNN and its peers, :mod:`sci_lightning.models`) trained with
Lightning; image decisions from the mean of patch probabilities; temperature-calibrated verdicts.

:func:`sci_lightning.methods.cnn.train.train` fits and tests a fold; :func:`sci_lightning.methods.cnn.evaluate.evaluate`
reproduces a checkpoint's test metrics or gives verdicts on a folder of photos."""
