"""Identification methods, peers of one another: ``cnn`` (patch classifiers), ``prnu`` (classical fingerprint
correlation), ``matcher`` (learned fingerprint matcher). Each package has the same face, ``train(cfg)`` and
``evaluate(cfg)`` returning the run's metrics; the run layer finds them through :mod:`sci_lightning.run.registry`,
a table. A method never imports another method or the run layer (import-linter contracts in ``pyproject.toml``)."""
