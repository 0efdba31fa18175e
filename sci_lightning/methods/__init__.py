"""Identification methods, peers of one another: ``cnn`` (patch classifier), ``prnu`` (classical fingerprint
correlation). Each package exposes ``train(cfg)`` and ``evaluate(cfg)`` returning the run's metrics; the run
layer finds them through :mod:`sci_lightning.run.registry`. A method never imports another method or the run
layer (import-linter contracts in ``pyproject.toml``)."""
