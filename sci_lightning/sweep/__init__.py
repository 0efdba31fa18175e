"""Cross-validation sweeps: per-setting summaries, pooled confusion matrices, per-variant figures.

``python -m sci_lightning.sweep summary SWEEP_DIR`` / ``python -m sci_lightning.sweep report SWEEP_DIR``; a
Hydra callback (:class:`sci_lightning.sweep.callback.CVSummaryCallback`) summarises every multirun at its end.
"""
